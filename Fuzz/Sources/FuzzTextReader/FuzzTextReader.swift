import Foundation
@testable import DMATrace

/// Any bytes as ftrace text (tracefs `trace`, `trace_pipe`, `trace-cmd report`), through
/// the reader and then the model and every rule, as `dma-trace analyze` runs them.
/// Errors are expected; a trap, a sanitizer report or a hang is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTextReader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    guard let reader = try? TextTraceReader(path: "fuzz.txt", sniffed: bytes.prefix(4096), options: .init(),
                                            content: bytes) else { return 0 }
    guard let result = try? Analyzer.analyze(source: reader) else { return 0 }
    // The reports read every field of every finding: render the text and JSON ones too.
    _ = TextReport(color: false).render(result, findings: result.findings)
    _ = try? JSONEncoder.stable().encode(AnalysisDocument(result, findings: result.findings))
    return 0
}
