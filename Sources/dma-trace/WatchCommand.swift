import ArgumentParser
import DMATrace
import Foundation

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Trace the dma, swiotlb and iommu events live, through our own tracefs instance, and report DMA-API bugs as they happen.",
        discussion: """
        With -- CMD, tracing is on before CMD starts and ends when it exits; CMD finds the instance's \
        trace_marker in DMA_TRACE_MARKER (a line written to the top-level trace_marker does not reach an \
        instance). Without CMD: until --duration is up or Ctrl-C. Findings are printed as soon as the model \
        can judge them (leaks at the end), then the same report as analyze. --format json writes NDJSON: one \
        finding per line, then one summary object. Exit status: 0, 1 a finding at or above --fail-on or CMD \
        failed, 2 bad use or a fault (nothing is left enabled).
        """
    )

    enum Format: String, ExpressibleByArgument { case text, json }

    @Option(help: "Output format: text, or json (NDJSON).") var format: Format = .text
    @OptionGroup var live: LiveOptions
    @OptionGroup var filters: FindingFilters

    func run() throws {
        var options = live.captureOptions()
        options.commandStdoutToStderr = format == .json
        let capture = LiveCapture(options: options)
        do { try capture.prepare() } catch let error as LiveError { throw UsageProblem(message: error.message) }
        let source = LiveEventSource(capture: capture)
        let encoder = JSONEncoder.stable(pretty: false)
        // A failed write (a closed pipe, a full disk) is thrown once the capture is over and
        // the instance is gone: the capture is not cut short in the middle of a rule.
        var streamFailure: Error?
        let stream: (Finding) -> Void = { finding in
            guard streamFailure == nil, filters.apply([finding]).count == 1 else { return }
            do {
                switch format {
                case .json:
                    try StandardOutput.write(try AnalysisDocument.findingLine(finding, encoder: encoder) + "\n")
                case .text:
                    try StandardOutput.write(TextReport.oneLine(finding) + "\n")
                }
            } catch {
                streamFailure = error
            }
        }
        let result: AnalysisResult
        do {
            result = try Analyzer.analyze(source: source, onFinding: stream)
        } catch let error as LiveError {
            throw UsageProblem(message: error.message)
        }
        if let streamFailure { throw streamFailure }
        guard let outcome = source.outcome else { throw UsageProblem(message: "the capture did not run") }
        let findings = filters.apply(result.findings)
        switch format {
        case .text:
            try StandardOutput.write("\n" + TextReport(color: false, showHistory: 12).render(result, findings: findings))
        case .json:
            var summary = LiveSummary(AnalysisDocument(result, findings: findings))
            summary.command = live.command.isEmpty ? nil : live.command
            summary.stop = "\(outcome.stop)"
            summary.lateEvents = source.lateEvents
            summary.ringBufferLost = outcome.lostByCPU.mapKeys { String($0) }
            let data = try encoder.encode(["summary": summary])
            try StandardOutput.write(String(decoding: data, as: UTF8.self) + "\n")
        }
        if source.lateEvents > 0 {
            stderrLine("\(source.lateEvents) events arrived later than the reorder window and were replayed out of order (\(source.firstLate ?? "?"))")
        }
        var failed = filters.fails(findings)
        if let problem = commandProblem(outcome.stop, live.command) {
            stderrLine(problem)
            failed = true
        }
        if let problem = outcome.instanceProblem { throw UsageProblem(message: problem) }
        if case .signal(let sig) = outcome.stop, !live.command.isEmpty {
            stderrLine("stopped by signal \(sig) before the traced command ended (it got SIGTERM)")
            throw ExitCode(128 + sig)
        }
        if failed { throw ExitCode(1) }
    }
}

/// The last NDJSON line of watch: analyze's document of the whole run, and how the capture ended.
struct LiveSummary: Encodable {
    var analysis: AnalysisDocument
    var command: [String]?
    var stop = ""
    var lateEvents: UInt64 = 0
    var ringBufferLost: [String: UInt64] = [:]
    init(_ analysis: AnalysisDocument) { self.analysis = analysis }
}

extension Dictionary {
    func mapKeys<K: Hashable>(_ f: (Key) -> K) -> [K: Value] { Dictionary<K, Value>(uniqueKeysWithValues: map { (f($0.key), $0.value) }) }
}
