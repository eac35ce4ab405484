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
    var formats: [String] = []
    @Option(name: [.customShort("o"), .customLong("output")], help: "Output file for the format at the same position (repeatable).")
    var outputs: [String] = []
    @Option(help: "Exit 1 when a finding is at or above this severity: error, warning, note or none.")
    var failOn: String = "error"
    @Option(help: "Report only findings whose fingerprint is not in this baseline; list entries that no longer occur.")
    var baseline: String?
    @Option(help: "Write the current findings (after configuration) as a baseline.")
    var writeBaseline: String?
    @Option(help: "Configuration file (default: ./.dma-trace.yml when present).")
    var config: String?
    @Option(name: .shortAndLong, help: "Traces analyzed at once (default: all cores).")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "No progress line, even on a terminal.") var quiet = false
    @Option(help: "Also write an HTML report per trace and an index.html into this folder.") var html: String?

    func validate() throws {
        if paths.isEmpty { throw ValidationError("give at least one trace, directory or pattern") }
        for f in formats where AuditReporters.reporter(f) == nil {
            throw ValidationError("unknown format '\(f)'; use \(AuditReporters.all.map { $0.identifier }.joined(separator: ", "))")
        }
        if outputs.count > max(formats.count, 1) { throw ValidationError("more --output than --format") }
        if max(formats.count, 1) - outputs.count > 1 { throw ValidationError("only one format can go to standard output: give each other format an --output") }
        if failOn != "none" && Severity(name: failOn) == nil { throw ValidationError("--fail-on takes error, warning, note or none") }
        if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
    }

    func run() throws {
        let configuration = try loadConfig()
        let known = try baseline.map { try Baseline.load(path: $0) }
        let collected = TraceCollector.collect(paths)
        let progress = Progress(enabled: !quiet && isatty(2) == 1, total: collected.files.count)
        let analyses = WorkerPool(jobs: jobs, timeline: html != nil).analyze(collected.files, progress: progress)
        progress.finish()
        var raw = analyses.map { (path: $0.path, document: $0.document, error: $0.error) }
        raw += collected.problems.map { (path: $0.path, document: nil, error: $0.description) }
        let result = AuditResult.assemble(raw, config: configuration, baseline: known)

        if let out = writeBaseline {
            let current = raw.compactMap(\.document).flatMap { configuration.apply($0.findings).kept }
            try Baseline(findings: current).write(to: out)
        }
        let chosen = formats.isEmpty ? ["text"] : formats
        for (i, id) in chosen.enumerated() {
            let text = try AuditReporters.reporter(id)!.render(result)
            if i < outputs.count {
                guard FileManager.default.createFile(atPath: outputs[i], contents: Data(text.utf8)) else {
                    throw UsageProblem(message: "\(outputs[i]): cannot write the \(id) report")
                }
            } else {
                writeStdout(text)
            }
        }
        if let dir = html { try writeHTML(result, into: dir) }
        for t in result.unreadable {
            FileHandle.standardError.write(Data("dma-trace: \(t.error ?? t.path)\n".utf8))
        }
        if !result.unreadable.isEmpty { throw ExitCode(2) }
        if let threshold = Severity(name: failOn), result.allFindings.contains(where: { $0.severity >= threshold }) {
            throw ExitCode(1)
        }
    }

    /// One page per trace (named after its position and file name, so equal names in
    /// different folders do not collide) and an index.
    private func writeHTML(_ result: AuditResult, into dir: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw UsageProblem(message: "\(dir): cannot create the HTML folder (\(error.localizedDescription))")
        }
        var entries: [HTMLReport.IndexEntry] = []
        for (i, t) in result.traces.enumerated() {
            let s = AnalysisDocument.Summary.of(t.findings)
            guard var doc = t.document else {
                entries.append(.init(trace: t.path, href: nil, errors: 0, warnings: 0, notes: 0, problem: t.error, kernel: "-"))
                continue
            }
            doc.findings = t.findings
            doc.summary = s
            let name = String(format: "%03d-", i + 1) + (t.path as NSString).lastPathComponent + ".html"
            let path = (dir as NSString).appendingPathComponent(name)
            guard FileManager.default.createFile(atPath: path, contents: Data(HTMLReport.render(doc).utf8)) else {
                throw UsageProblem(message: "\(path): cannot write the report")
            }
            entries.append(.init(trace: t.path, href: name, errors: s.errors, warnings: s.warnings, notes: s.notes,
                                 problem: nil, kernel: doc.trace.kernelRelease ?? "-"))
        }
        let index = (dir as NSString).appendingPathComponent("index.html")
        guard FileManager.default.createFile(atPath: index, contents: Data(HTMLReport.renderIndex(entries).utf8)) else {
            throw UsageProblem(message: "\(index): cannot write the index")
        }
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

/// Runs `dma-trace analyze --format json` per trace in child processes: a
/// hostile file cannot take the audit down, and each worker's memory is
/// returned when it exits. Results come back in input order.
final class WorkerPool: @unchecked Sendable {
    struct Outcome: Sendable {
        var path: String
        var document: AnalysisDocument?
        var error: String?
    }

    let jobs: Int
    let timeline: Bool
    private let lock = NSLock()
    private var results: [Outcome?] = []
    init(jobs: Int, timeline: Bool = false) {
        self.jobs = jobs
        self.timeline = timeline
    }

    static var executable: URL {
        let selfExe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        if FileManager.default.isExecutableFile(atPath: selfExe.path) { return selfExe }
        return URL(fileURLWithPath: CommandLine.arguments[0])
    }

    func analyze(_ files: [String], progress: Progress) -> [Outcome] {
        results = [Outcome?](repeating: nil, count: files.count)
        let exe = Self.executable
        let slots = DispatchSemaphore(value: jobs)
        let group = DispatchGroup()
        let queue = DispatchQueue(label: "dma-trace.audit", attributes: .concurrent)
        for (i, path) in files.enumerated() {
            slots.wait()
            group.enter()
            queue.async {
                let outcome = Self.runOne(exe, path, timeline: self.timeline)
                self.lock.withLock {
                    self.results[i] = outcome
                    progress.done(events: outcome.document?.dmaEvents ?? 0)
                }
                slots.signal()
                group.leave()
            }
        }
        group.wait()
        return lock.withLock { results.map { $0! } }
    }

    static func runOne(_ exe: URL, _ path: String, timeline: Bool) -> Outcome {
        let p = Process()
        p.executableURL = exe
        p.arguments = ["analyze", "--format", "json", "--fail-on", "none"] + (timeline ? ["--timeline"] : []) + ["--", path]
        let out = Pipe()
        let errPipe = Pipe()
        p.standardOutput = out
        p.standardError = errPipe
        do { try p.run() } catch {
            return Outcome(path: path, document: nil, error: "\(path): cannot start the analysis worker: \(error)")
        }
        // stderr is read on another thread so neither pipe can fill up and stall the child.
        let errBox = DataBox()
        let errDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            errBox.data = errPipe.fileHandleForReading.readDataToEndOfFile()
            errDone.signal()
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        errDone.wait()
        let errData = errBox.data
        p.waitUntilExit()
        let message = String(decoding: errData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: "dma-trace: ", with: "")
        if p.terminationReason == .uncaughtSignal {
            return Outcome(path: path, document: nil, error: "\(path): the analysis died on signal \(p.terminationStatus)")
        }
        guard p.terminationStatus == 0 else {
            return Outcome(path: path, document: nil, error: message.isEmpty ? "\(path): unreadable (exit \(p.terminationStatus))" : message)
        }
        do {
            return Outcome(path: path, document: try JSONDecoder().decode(AnalysisDocument.self, from: data), error: nil)
        } catch {
            return Outcome(path: path, document: nil, error: "\(path): the analysis produced unreadable output: \(error)")
        }
    }
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
        FileHandle.standardError.write(Data(String(format: "\r[%d/%d] traces, %.0f events/s   ", done, total, rate).utf8))
    }

    func finish() {
        if enabled && done > 0 { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Hands the stderr bytes from the reader thread back; the semaphore orders the access.
final class DataBox: @unchecked Sendable {
    var data = Data()
}
