import Foundation

/// A whole file mapped read-only. The ring-buffer pages of a trace.dat are
/// read in place: no copy, no per-record allocation.
final class MappedFile: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    private let base: UnsafeMutableRawPointer?
    private let length: Int

    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw IngestError(path: path, problem: "cannot be opened for reading: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw IngestError(path: path, problem: "cannot be examined: \(String(cString: strerror(errno)))") }
        length = Int(st.st_size)
        guard length > 0 else {
            base = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let p = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw IngestError(path: path, problem: "cannot be mapped into memory: \(String(cString: strerror(errno)))")
        }
        // The pages are read once, front to back, per CPU.
        _ = madvise(p, length, MADV_SEQUENTIAL)
        base = p
        bytes = UnsafeRawBufferPointer(start: p, count: length)
    }

    deinit {
        if let base { munmap(base, length) }
    }
}

/// Reads integers of the file's byte order at checked offsets. Every read
/// that would leave the buffer returns nil: nothing in a hostile file is trusted.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let swap: Bool

    var count: Int { bytes.count }

    @inline(__always)
    func u8(_ at: Int) -> UInt8? {
        guard at >= 0, at < bytes.count else { return nil }
        return bytes[at]
    }

    @inline(__always)
    func u16(_ at: Int) -> UInt16? {
        guard at >= 0, at <= bytes.count - 2 else { return nil }
        let v = bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self)
        return swap ? v.byteSwapped : v
    }

    @inline(__always)
    func u32(_ at: Int) -> UInt32? {
        guard at >= 0, at <= bytes.count - 4 else { return nil }
        let v = bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)
        return swap ? v.byteSwapped : v
    }

    @inline(__always)
    func u64(_ at: Int) -> UInt64? {
        guard at >= 0, at <= bytes.count - 8 else { return nil }
        let v = bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)
        return swap ? v.byteSwapped : v
    }

    /// A `long` of the recorded kernel (4 or 8 bytes).
    @inline(__always)
    func long(_ at: Int, size: Int) -> UInt64? {
        size == 8 ? u64(at) : u32(at).map(UInt64.init)
    }

    /// A NUL-terminated string starting at `at`, and the offset after its NUL.
    func cString(_ at: Int, limit: Int = 4096) -> (String, Int)? {
        guard at >= 0, at < bytes.count else { return nil }
        let end = min(bytes.count, at + limit)
        var i = at
        while i < end {
            if bytes[i] == 0 {
                return (String(decoding: UnsafeRawBufferPointer(rebasing: bytes[at..<i]), as: UTF8.self), i + 1)
            }
            i += 1
        }
        return nil
    }

    func slice(_ at: Int, _ length: Int) -> UnsafeRawBufferPointer? {
        guard at >= 0, length >= 0, at <= bytes.count, length <= bytes.count - at else { return nil }
        return UnsafeRawBufferPointer(rebasing: bytes[at..<(at + length)])
    }
}
