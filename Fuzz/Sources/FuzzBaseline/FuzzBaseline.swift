import Foundation
import DMATrace

/// Any bytes as a `--baseline` file: a baseline or an error naming the file, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBaseline(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if let baseline = try? Baseline.decode(Data(bytes: data, count: size), path: "fuzz.json") {
        _ = baseline.fingerprints
    }
    return 0
}
