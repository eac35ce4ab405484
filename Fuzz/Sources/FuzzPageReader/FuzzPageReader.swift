import Foundation
@testable import DMATrace

/// Any bytes as one ring-buffer sub-buffer ("page") of a trace.dat or of tracefs
/// per_cpu/cpuN/trace_pipe_raw, walked by the page decoder the way the reader walks a
/// file's CPU data. The first byte picks the layout: bit 0 a 4-byte commit word (32-bit
/// kernels) instead of 8, bit 1 big-endian. Seeds are real pages (Fuzz/Tools/extract-pages.py).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPageReader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let format = SubBufferFormat(commitSize: data[0] & 1 == 0 ? 8 : 4, bigEndian: data[0] & 2 != 0)
    let page = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    guard var cursor = try? SubBufferCursor(page: page, format: format) else { return 0 }
    var checksum: UInt8 = 0
    while let record = try? cursor.nextRecord() {
        // Every byte a record claims must lie inside the page: AddressSanitizer sees to it.
        for i in 0..<record.size { checksum &+= record.data.load(fromByteOffset: i, as: UInt8.self) }
    }
    // Stored where the optimizer cannot prove it unused, so the reads above stay in.
    pageChecksum = checksum
    return 0
}

nonisolated(unsafe) var pageChecksum: UInt8 = 0
