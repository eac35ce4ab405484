import ArgumentParser
import DMATrace
import Foundation

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Analyze many traces in parallel and gate a pipeline on the findings.",
        discussion: """
        PATH may be a file, a directory (searched recursively for *.dat, *.trace, *.txt) or a glob.
        Each --format goes to the --output at the same position, or to standard output.
        Exit status: 0 clean, 1 findings at or above --fail-on, 2 when any input could not be read
        (the others are still analyzed and reported) or on bad usage.
        """
    )

    @Argument(help: "Trace files, directories or glob patterns.") var paths: [String]
    @Option(name: .customLong("format"), help: "text, json, sarif, junit or github (repeatable).")
    var formats: [ReporterName] = []
    @Option(name: [.customShort("o"), .customLong("output")], help: "Output file for the format at the same position (repeatable).")
    var outputs: [String] = []
    @Option(help: "Exit 1 when a finding is at or above this severity: error, warning, note or none.")
    var failOn: FailOn = .error
    @Option(help: "Report only findings whose fingerprint is not in this baseline; list entries that no longer occur.")
    var baseline: String?
    @Option(help: "Write the current findings (after configuration) as a baseline.")
    var writeBaseline: String?
    @Option(help: "Configuration file (default: ./.dma-trace.yml when present).")
    var config: String?
    @Option(name: .shortAndLong, help: "Traces analyzed at once (default: all cores).")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Seconds one trace's analysis may take before it is stopped and counted as failed (0: no limit).")
    var timeout: Double = 3600
    @Flag(help: "No progress line, even on a terminal.") var quiet = false
    @Option(help: "Also write an HTML report per trace and an index.html into this folder.") var html: String?
    /// The program run per trace; tests point it at misbehaving workers.
    @Option(help: .hidden) var worker: String?
    @OptionGroup var debugInfo: DebugInfoArguments
    @Option(help: "In the HTML reports, link each source line: a URL template with {file} and {line}.")
    var sourceURL: String?

    func validate() throws {
        if paths.isEmpty { throw ValidationError("give at least one trace, directory or pattern") }
        if outputs.count > max(formats.count, 1) { throw ValidationError("more --output than --format") }
        if max(formats.count, 1) - outputs.count > 1 { throw ValidationError("only one format can go to standard output: give each other format an --output") }
        if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        if !(timeout >= 0) { throw ValidationError("--timeout takes seconds, 0 for no limit") }
        if let sourceURL, !SourceLinks.isValidTemplate(sourceURL) {
            throw ValidationError("--source-url must be an http(s) URL template containing {file} (and usually {line})")
        }
    }

    func run() throws {
        let configuration = try loadConfig()
        let known = try baseline.map { try Baseline.load(path: $0) }
        let collected = TraceCollector.collect(paths)
        let progress = Progress(enabled: !quiet && isatty(2) == 1, total: collected.files.count)
        // Command-line debug info adds to the configuration's; a bad path fails before any work.
        let debugPaths = configuration.debugInfo.paths + debugInfo.paths
        if !debugPaths.isEmpty {
            // Opened once here: a file every worker would refuse is one error, not one per trace.
            _ = try StackResolver(options: DebugInfoOptions(paths: debugPaths), kernelRelease: nil)
        }
        let workerArgs = debugPaths.flatMap { ["--debuginfo", $0] }
            + configuration.debugInfo.moduleBases.sorted(by: { $0.key < $1.key })
                .filter { name, _ in !debugInfo.options.moduleBases.keys.contains(name) }
                .flatMap { ["--module-base", "\($0.key)=0x\(String($0.value, radix: 16))"] }
            + debugInfo.moduleBases.flatMap { ["--module-base", $0] }
        let pool = WorkerPool(executable: worker ?? WorkerPool.ownExecutable, jobs: jobs, timeout: timeout > 0 ? timeout : nil,
                              analyzeOptions: (html != nil ? ["--timeline"] : []) + workerArgs)
        let analyses = pool.analyze(collected.files) { progress.done(events: $0.document?.dmaEvents ?? 0) }
        progress.finish()
        var raw = analyses.map { (path: $0.path, status: $0.status, document: $0.document, error: $0.error) }
        raw += collected.problems.map { (path: $0.path, status: AuditResult.Status.unreadable, document: nil, error: $0.description) }
        var result = AuditResult.assemble(raw, config: configuration, baseline: known)
        result.sourceRoot = debugInfo.root ?? configuration.sourceRoot.map(SourceRoot.init)
        var seenWarnings = Set<String>()
        for w in raw.compactMap(\.document).flatMap({ $0.debugInfoWarnings ?? [] }) where seenWarnings.insert(w).inserted {
            warnDebugInfo([w])
        }

        // Every output is attempted, each failure reported on its own.
        var failures: [OutputError] = []
        func attempt(_ write: () throws -> Void) throws {
            do { try write() } catch let e as OutputError { failures.append(e) }
        }
        if let out = writeBaseline {
            let current = raw.compactMap(\.document).flatMap { configuration.apply($0.findings).kept }
            try attempt { try Baseline(findings: current).write(to: out) }
        }
        let chosen = formats.isEmpty ? [ReporterName(id: "text")] : formats
        for (i, format) in chosen.enumerated() {
            let text = try format.reporter.render(result)
            try attempt { i < outputs.count ? try AtomicFile.write(text, to: outputs[i]) : try StandardOutput.write(text) }
        }
        if let dir = html { try attempt { try writeHTML(result, into: dir) } }
        for t in result.unreadable { Diagnostics.error(t.error ?? t.path) }
        if !failures.isEmpty { throw OutputFailures(failures: failures) }
        if !result.unreadable.isEmpty { throw ExitCode(2) }
        if let threshold = failOn.threshold, result.allFindings.contains(where: { $0.severity >= threshold }) {
            throw ExitCode(1)
        }
    }

    /// One page per trace (named after its position and file name, so equal names in
    /// different folders do not collide), each replaced whole, and the index last: it
    /// never links a page that is not complete.
    private func writeHTML(_ result: AuditResult, into dir: String) throws {
        try AtomicFile.createFolder(dir)
        var entries: [HTMLReport.IndexEntry] = []
        for (i, t) in result.traces.enumerated() {
            let s = AnalysisDocument.Summary.of(t.findings)
            guard var doc = t.document else {
                let problem = (t.status == .failed ? "analysis failed: " : "") + (t.error ?? "unreadable")
                entries.append(.init(trace: t.path, href: nil, errors: 0, warnings: 0, notes: 0, problem: problem, kernel: "-"))
                continue
            }
            doc.findings = t.findings
            doc.summary = s
            let name = String(format: "%03d-", i + 1) + (t.path as NSString).lastPathComponent + ".html"
            try AtomicFile.write(HTMLReport.render(doc, sources: SourceLinks(root: result.sourceRoot, urlTemplate: sourceURL)),
                                 to: (dir as NSString).appendingPathComponent(name))
            entries.append(.init(trace: t.path, href: name, errors: s.errors, warnings: s.warnings, notes: s.notes,
                                 problem: nil, kernel: doc.trace.kernelRelease ?? "-"))
        }
        try AtomicFile.write(HTMLReport.renderIndex(entries), to: (dir as NSString).appendingPathComponent("index.html"))
    }

    private func loadConfig() throws -> AuditConfig {
        let path = config ?? (FileManager.default.fileExists(atPath: AuditConfig.fileName) ? AuditConfig.fileName : nil)
        guard let path else { return AuditConfig() }
        do {
            return try AuditConfig.load(path: path)
        } catch let e as AuditConfig.ConfigError {
            throw UsageProblem(message: e.description)
        }
    }
}

/// An audit output format, by the identifiers of the reporter registry.
struct ReporterName: ExpressibleByArgument {
    var id: String
    var reporter: AuditReporter.Type { AuditReporters.reporter(id)! }

    init(id: String) { self.id = id }

    init?(argument: String) {
        guard AuditReporters.reporter(argument) != nil else { return nil }
        id = argument
    }

    static var allValueStrings: [String] { AuditReporters.all.map { $0.identifier } }
}

/// "[12/50] traces, 1.2 M events/s" on a terminal; nothing otherwise.
final class Progress: @unchecked Sendable {
    private let enabled: Bool
    private let total: Int
    private var done = 0
    private var events: UInt64 = 0
    private let start = Date()

    init(enabled: Bool, total: Int) {
        self.enabled = enabled
        self.total = total
    }

    /// Called under the pool's lock.
    func done(events n: UInt64) {
        done += 1
        events += n
        guard enabled else { return }
        let rate = Double(events) / max(Date().timeIntervalSince(start), 0.001)
        Diagnostics.raw(String(format: "\r[%d/%d] traces, %.0f events/s   ", done, total, rate))
    }

    func finish() {
        if enabled && done > 0 { Diagnostics.raw("\n") }
    }
}
