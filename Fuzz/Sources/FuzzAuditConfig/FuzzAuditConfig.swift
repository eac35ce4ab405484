import Foundation
import DMATrace

/// Any bytes as `.dma-trace.yml`: either a configuration or a ConfigError, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAuditConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = try? AuditConfig.parse(text, path: "fuzz.yml")
    return 0
}
