import Foundation

/// The checkout of the driver's source (`--source-root`): SARIF and HTML name files
/// relative to it, as code scanning and git web views expect.
public struct SourceRoot: Sendable, Equatable {
    /// Absolute, standardized, no trailing slash.
    public let path: String

    public init(_ path: String) {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var p = (absolute as NSString).standardizingPath
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        self.path = p
    }

    /// The `file://` URI SARIF's originalUriBaseIds wants (ending in a slash).
    public var uri: String { URL(fileURLWithPath: path, isDirectory: true).absoluteString }

    /// `file` relative to the root: directly when it lies inside, otherwise the longest tail
    /// of its path that exists under the root (DWARF names an out-of-tree module's file by
    /// the folder it was built in, an in-tree one relative to the kernel tree). nil when
    /// the root has no such file.
    public func relativePath(_ file: String) -> String? {
        let fm = FileManager.default
        let clean = (file as NSString).standardizingPath
        if clean.hasPrefix(path + "/") {
            let rel = String(clean.dropFirst(path.count + 1))
            return fm.fileExists(atPath: clean) ? rel : nil
        }
        let parts = clean.split(separator: "/").map(String.init).filter { $0 != "." }
        for start in parts.indices {
            let rel = parts[start...].joined(separator: "/")
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: path + "/" + rel, isDirectory: &isDir), !isDir.boolValue { return rel }
        }
        return nil
    }
}
