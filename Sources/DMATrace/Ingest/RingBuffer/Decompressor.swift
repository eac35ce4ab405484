import CCompression

/// The algorithms trace-cmd writes into trace.dat v7 (lib/trace-cmd/trace-compress-*.c):
/// a zstd frame or a zlib stream per block, whose uncompressed size the file states.
enum Compression: String, Sendable {
    case none
    case zstd
    case zlib
}

/// One decompression context; not shared between threads.
final class Decompressor {
    let algorithm: Compression
    private var zstdContext: OpaquePointer?

    init(_ algorithm: Compression) {
        self.algorithm = algorithm
        if algorithm == .zstd { zstdContext = ZSTD_createDCtx() }
    }

    deinit {
        if let zstdContext { ZSTD_freeDCtx(zstdContext) }
    }

    /// Decompresses `input` into exactly `output.count` bytes, or says why not.
    func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> String? {
        guard let src = input.baseAddress, let dst = output.baseAddress else {
            return output.isEmpty && input.isEmpty ? nil : "empty compressed block"
        }
        switch algorithm {
        case .none:
            guard input.count == output.count else { return "stored block of \(input.count) bytes, \(output.count) expected" }
            dst.copyMemory(from: src, byteCount: input.count)
            return nil
        case .zstd:
            guard let zstdContext else { return "zstd context could not be created" }
            let n = ZSTD_decompressDCtx(zstdContext, dst, output.count, src, input.count)
            if ZSTD_isError(n) != 0 { return "zstd: " + String(cString: ZSTD_getErrorName(n)) }
            guard n == output.count else { return "zstd block gave \(n) bytes, \(output.count) expected" }
            return nil
        case .zlib:
            var produced = uLongf(output.count)
            let rc = uncompress(dst.assumingMemoryBound(to: Bytef.self), &produced,
                                src.assumingMemoryBound(to: Bytef.self), uLong(input.count))
            guard rc == Z_OK else { return "zlib error \(rc)" }
            guard Int(produced) == output.count else { return "zlib block gave \(produced) bytes, \(output.count) expected" }
            return nil
        }
    }

    /// Decompresses into a new buffer of `size` bytes (sections of metadata).
    func decompress(_ input: UnsafeRawBufferPointer, size: Int) -> Result<[UInt8], DecompressionError> {
        var out = [UInt8](repeating: 0, count: size)
        let problem = out.withUnsafeMutableBytes { decompress(input, into: $0) }
        if let problem { return .failure(DecompressionError(problem: problem)) }
        return .success(out)
    }
}

struct DecompressionError: Error {
    let problem: String
}
