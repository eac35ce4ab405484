import Foundation

/// Replaces a file all at once: the bytes go to a temporary file in the same
/// folder, are flushed to disk, and the temporary file is renamed over the
/// destination. A failure or a kill leaves the old file (or none), never half a
/// new one. Devices and FIFOs (`--output /dev/stdout`, `/dev/full`) cannot be
/// renamed over, so they are written in place, still checked.
public enum AtomicFile {
    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }

    public static func write(_ data: Data, to path: String) throws {
        var target = path
        var info = stat()
        if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK, let resolved = realpath(path, nil) {
            // Replace what the link points at, not the link.
            target = String(cString: resolved)
            free(resolved)
        }
        var existingMode: mode_t?
        if stat(target, &info) == 0 {
            switch info.st_mode & S_IFMT {
            case S_IFREG: existingMode = info.st_mode & 0o7777
            case S_IFDIR: throw OutputError(destination: path, code: EISDIR)
            default: return try writeInPlace(data, to: path)
            }
        }
        let folder = (target as NSString).deletingLastPathComponent
        let name = (target as NSString).lastPathComponent
        let template = (folder.isEmpty ? "." : folder) + "/." + name + ".tmp-XXXXXX"
        let (fd, temporary) = try Termination.createTemporaryFile(template: template, destination: path)
        do {
            defer { close(fd) }
            try data.withUnsafeBytes { try writeAll(fd, $0, destination: path) }
            guard fchmod(fd, existingMode ?? (0o666 & ~creationMask)) == 0, fsync(fd) == 0 else {
                throw OutputError(destination: path, code: errno)
            }
        } catch {
            Termination.discardTemporaryFile(temporary)
            throw error
        }
        if let failure = Termination.commitTemporaryFile(temporary, to: target) {
            Termination.discardTemporaryFile(temporary)
            throw OutputError(destination: path, code: failure)
        }
        syncFolder(folder.isEmpty ? "." : folder)
    }

    /// `mkdir -p`, with the OS error when it cannot be done.
    public static func createFolder(_ path: String) throws {
        var built = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            built += (built.isEmpty || built.hasSuffix("/") ? "" : "/") + part
            if mkdir(built, 0o777) != 0 && errno != EEXIST { throw OutputError(destination: path, code: errno) }
        }
        var info = stat()
        guard stat(path, &info) == 0 else { throw OutputError(destination: path, code: errno) }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw OutputError(destination: path, code: ENOTDIR) }
    }

    private static func writeInPlace(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw OutputError(destination: path, code: errno) }
        defer { close(fd) }
        try data.withUnsafeBytes { try writeAll(fd, $0, destination: path) }
    }

    /// The rename is durable only once the folder's entry is on disk; some file
    /// systems refuse fsync on a folder, which costs durability, not correctness.
    private static func syncFolder(_ folder: String) {
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    /// The permissions a plain `open(O_CREAT, 0666)` would give a new file.
    private static let creationMask: mode_t = {
        let mask = umask(0o022)
        umask(mask)
        return mask
    }()
}
