import Foundation

/// Runs `dma-trace analyze --format json` per trace in child processes: a
/// hostile file cannot take the audit down, and each worker's memory is
/// returned when it exits. A worker that crashes, is killed, overruns the
/// timeout or prints something that is not an analysis makes its trace
/// "failed" with the reason; the others are unaffected. Results come back in
/// input order.
public final class WorkerPool: @unchecked Sendable {
    public struct Outcome: Sendable {
        public var path: String
        public var document: AnalysisDocument?
        public var status: AuditResult.Status
        public var error: String?
    }

    let executable: String
    let jobs: Int
    let timeout: Double?
    let analyzeOptions: [String]
    private let lock = NSLock()

    /// `analyzeOptions` go before the trace path on every worker's command line.
    public init(executable: String = WorkerPool.ownExecutable, jobs: Int, timeout: Double?, analyzeOptions: [String] = []) {
        self.executable = executable
        self.jobs = max(jobs, 1)
        self.timeout = timeout
        self.analyzeOptions = analyzeOptions
    }

    /// This very binary: workers are `dma-trace analyze`.
    public static var ownExecutable: String {
        let selfExe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        if FileManager.default.isExecutableFile(atPath: selfExe.path) { return selfExe.path }
        return CommandLine.arguments[0]
    }

    /// `finished` is called once per trace, serialized, in completion order.
    public func analyze(_ files: [String], finished: @escaping @Sendable (Outcome) -> Void = { _ in }) -> [Outcome] {
        let results = ResultSlots(count: files.count)
        let slots = DispatchSemaphore(value: jobs)
        let group = DispatchGroup()
        let queue = DispatchQueue(label: "dma-trace.audit", attributes: .concurrent)
        for (i, path) in files.enumerated() {
            slots.wait()
            group.enter()
            queue.async {
                let outcome = self.runOne(path)
                self.lock.withLock {
                    results.values[i] = outcome
                    finished(outcome)
                }
                slots.signal()
                group.leave()
            }
        }
        group.wait()
        return lock.withLock { results.values.map { $0! } }
    }

    func runOne(_ path: String) -> Outcome {
        let arguments = ["analyze", "--format", "json", "--fail-on", "none"] + analyzeOptions + ["--", path]
        func failed(_ reason: String) -> Outcome { Outcome(path: path, document: nil, status: .failed, error: "\(path): \(reason)") }
        let run: WorkerProcess.Finished
        switch WorkerProcess.run(executable, arguments, timeout: timeout) {
        case .failure(let e):
            return failed("cannot start the analysis worker \(executable): \(String(cString: strerror(e.code)))")
        case .success(let finished):
            run = finished
        }
        let message = String(decoding: run.stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: "dma-trace: ", with: "")
        switch run.end {
        case .timedOut:
            return failed("the analysis did not finish within \(Self.seconds(timeout ?? 0)) s (--timeout); its worker was killed")
        case .signaled(SIGKILL):
            return failed("the analysis worker was killed (SIGKILL, as the out-of-memory killer does)")
        case .signaled(let s):
            return failed("the analysis worker crashed (signal \(s), \(String(cString: strsignal(s))))")
        case .exited(2):
            // The worker's own verdict on the file, already naming it.
            return Outcome(path: path, document: nil, status: .unreadable,
                           error: message.isEmpty ? "\(path): unreadable (exit 2)" : message)
        case .exited(0):
            do {
                return Outcome(path: path, document: try JSONDecoder().decode(AnalysisDocument.self, from: run.stdout),
                               status: .analyzed, error: nil)
            } catch {
                let what = run.stdout.isEmpty ? "no output" : "\(run.stdout.count) bytes that are not a complete analysis"
                return failed("the analysis worker exited 0 but printed \(what)")
            }
        case .exited(let code):
            return failed("the analysis worker exited with status \(code)" + (message.isEmpty ? "" : ": \(message)"))
        }
    }

    static func seconds(_ s: Double) -> String {
        s == s.rounded() ? String(Int(s)) : String(s)
    }
}

/// Written under the pool's lock only.
private final class ResultSlots: @unchecked Sendable {
    var values: [WorkerPool.Outcome?]
    init(count: Int) { values = .init(repeating: nil, count: count) }
}
