import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Expands audit arguments into trace files: files as given, directories
/// recursively (*.dat, *.trace, *.txt, and *.data for perf.data), and glob patterns.
public enum TraceCollector {
    public static let extensions: Set<String> = ["dat", "trace", "txt", "data"]

    public struct Collected: Sendable {
        /// In a stable order: arguments in order, directory contents sorted.
        public var files: [String] = []
        public var problems: [IngestError] = []
    }

    public static func collect(_ arguments: [String]) -> Collected {
        var out = Collected()
        var seen = Set<String>()
        func add(_ path: String) {
            if seen.insert(path).inserted { out.files.append(path) }
        }
        for arg in arguments {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: arg, isDirectory: &isDir) {
                if isDir.boolValue {
                    let found = walk(arg)
                    if found.isEmpty {
                        out.problems.append(IngestError(path: arg, problem: "directory holds no *.dat, *.trace, *.txt or *.data file"))
                    }
                    found.forEach(add)
                } else {
                    add(arg)
                }
            } else if arg.contains(where: { "*?[".contains($0) }) {
                let matches = glob(arg)
                if matches.isEmpty { out.problems.append(IngestError(path: arg, problem: "pattern matches no file")) }
                for m in matches {
                    var d: ObjCBool = false
                    if FileManager.default.fileExists(atPath: m, isDirectory: &d), d.boolValue { walk(m).forEach(add) } else { add(m) }
                }
            } else {
                out.problems.append(IngestError(path: arg, problem: "no such file"))
            }
        }
        return out
    }

    private static func walk(_ dir: String) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            let ext = (rel as NSString).pathExtension.lowercased()
            guard extensions.contains(ext) else { continue }
            let full = (dir as NSString).appendingPathComponent(rel)
            var d: ObjCBool = false
            if FileManager.default.fileExists(atPath: full, isDirectory: &d), !d.boolValue { out.append(full) }
        }
        return out.sorted()
    }

    private static func glob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        var out: [String] = []
        for i in 0..<Int(g.gl_pathc) {
            if let p = g.gl_pathv[i] { out.append(String(cString: p)) }
        }
        return out.sorted()
    }
}
