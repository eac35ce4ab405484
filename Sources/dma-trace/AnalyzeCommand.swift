import ArgumentParser
import DMATrace
import Foundation

struct FindingFilters: ParsableArguments {
    @Option(help: "Report only findings at or above this severity: note, warning or error.")
    var minSeverity: SeverityName = .note
    @Option(name: .customLong("rule"), help: "Report only this rule (repeatable).")
    var rules: [String] = []
    @Option(name: .customLong("device"), help: "Report only this device (repeatable).")
    var devices: [String] = []
    @Option(help: "Exit 1 when a finding is at or above this severity: error, warning, note or none.")
    var failOn: FailOn = .error

    func validate() throws {
        for r in rules where RuleRegistry.description(of: r) == nil {
            throw ValidationError("unknown rule '\(r)'; the rules are \(RuleRegistry.descriptions.map(\.id).joined(separator: ", ")) (see `dma-trace rules`)")
        }
    }

    func apply(_ findings: [Finding]) -> [Finding] {
        findings.filter { f in
            f.severity >= minSeverity.severity && (rules.isEmpty || rules.contains(f.rule)) && (devices.isEmpty || devices.contains(f.device))
        }
    }

    func fails(_ findings: [Finding]) -> Bool {
        guard let threshold = failOn.threshold else { return false }
        return findings.contains { $0.severity >= threshold }
    }
}

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Replay traces through the DMA-API model and report bugs.",
        discussion: "Exit status: 0 no finding at or above --fail-on, 1 there are, 2 bad input or usage."
    )

    enum Format: String, NamedChoice { case text, json }

    @OptionGroup var input: InputOptions
    @OptionGroup var filters: FindingFilters
    @OptionGroup var debugInfo: DebugInfoArguments
    @Option(help: "Output format: text or json.") var format: Format = .text
    @Option(help: "Colour the text report: auto, always or never.") var color: ColorChoice = .auto
    @Option(help: "How many history events to show per finding in text.") var history: Int = 12
    @Flag(help: "Include live mappings over time in the JSON (what the HTML report draws).") var timeline = false
    @Argument(help: "trace.dat or ftrace text files.") var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one trace file") }
    }

    func run() throws {
        var failed = false
        var documents: [AnalysisDocument] = []
        let useColor = color == .always || (color == .auto && isatty(1) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil)
        for (i, path) in files.enumerated() {
            var options = AnalysisOptions()
            options.timeline = timeline
            options.debugInfo = debugInfo.options
            let result = try Analyzer.analyze(path: path, options: options, textOptions: .init(keepUnreadable: input.verbose ? 200 : 0))
            input.reportUnreadable(result.stats, path: path)
            if format == .json { warnDebugInfo(result.debugInfoWarnings) }
            let findings = filters.apply(result.findings)
            failed = failed || filters.fails(findings)
            switch format {
            case .text:
                try StandardOutput.write((i > 0 ? "\n" : "") + TextReport(color: useColor, showHistory: history, sourceRoot: debugInfo.root).render(result, findings: findings))
            case .json:
                documents.append(AnalysisDocument(result, findings: findings))
            }
        }
        if format == .json {
            let encoder = JSONEncoder.stable(pretty: true)
            let data = documents.count == 1 ? try encoder.encode(documents[0]) : try encoder.encode(documents)
            try StandardOutput.write(data + Data("\n".utf8))
        }
        if failed { throw ExitCode(1) }
    }
}
