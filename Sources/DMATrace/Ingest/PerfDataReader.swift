import Foundation

/// Reads a perf.data file by running `perf script` on it and streaming its output through
/// the `perf script` text reader. perf.data is never parsed here: perf owns that format
/// (and its many versions); the tool only reads what perf prints.
public final class PerfDataReader: DMAEventSource {
    /// perf.data's file magic ("PERFILE2", perf's current header version).
    static let magic: [UInt8] = Array("PERFILE2".utf8)

    /// The fields dma-trace reads. `trace:` limits them to tracepoint samples (other events
    /// keep perf's defaults); `ip,sym,symoff,dso` print the callchain of a `-g` recording.
    /// `-f`: perf refuses a file owned by another user (a `sudo perf record`) without it, and
    /// reading a file the user can read is all dma-trace does.
    static let scriptArguments = ["script", "-f", "-F", "trace:comm,tid,pid,cpu,time,event,trace,ip,sym,symoff,dso",
                                  "--ns", "--show-lost-events", "--header"]

    public private(set) var facts: TraceFacts
    private let path: String
    private let options: TextTraceReader.Options
    private let perf: String

    public init(path: String, options: TextTraceReader.Options = .init()) throws {
        self.path = path
        self.options = options
        facts = TraceFacts(path: path, format: .perfData)
        guard let perf = Self.perfExecutable() else {
            if let given = ProcessInfo.processInfo.environment["DMA_TRACE_PERF"], !given.isEmpty {
                throw IngestError(path: path, problem: "is a perf.data file, and DMA_TRACE_PERF=\(given) is not an executable perf")
            }
            throw IngestError(path: path, problem: "is a perf.data file, and reading it needs perf, which was not found in PATH (Debian/Ubuntu: apt-get install linux-perf; or set DMA_TRACE_PERF to the perf binary)")
        }
        self.perf = perf
    }

    /// DMA_TRACE_PERF, else the first executable `perf` in PATH.
    static func perfExecutable() -> String? {
        let env = ProcessInfo.processInfo.environment
        if let p = env["DMA_TRACE_PERF"], !p.isEmpty {
            return FileManager.default.isExecutableFile(atPath: p) ? p : nil
        }
        for dir in (env["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = String(dir) + "/perf"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    public func read(_ handler: (consuming DMAEvent) throws -> Void) throws -> IngestStats {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: perf)
        process.arguments = Self.scriptArguments + ["-i", path]
        // No pager, no interactive UI, no colour codes in the text.
        var env = ProcessInfo.processInfo.environment
        env["PAGER"] = "cat"
        env["PERF_PAGER"] = "cat"
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let stderrText = StderrCollector(err.fileHandleForReading)
        do {
            try process.run()
        } catch {
            throw IngestError(path: path, problem: "is a perf.data file, and \(perf) could not be started: \(error.localizedDescription)")
        }
        try? out.fileHandleForWriting.close()
        try? err.fileHandleForWriting.close()
        let text = TextTraceReader(path: path, perfScriptStream: out.fileHandleForReading, format: .perfData, options: options)
        var stats: IngestStats?
        var readError: Error?
        var consumerError: Error?
        do {
            stats = try text.read { event in
                do { try handler(event) } catch {
                    consumerError = error
                    throw error
                }
            }
        } catch {
            readError = error
        }
        // perf, if it is still writing, now gets EPIPE or SIGPIPE instead of blocking on a full pipe.
        try? out.fileHandleForReading.close()
        if consumerError != nil, process.isRunning { process.terminate() }
        var waited = 0
        while process.isRunning && waited < 1000 {
            usleep(10_000)
            waited += 1
        }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        let message = stderrText.finish()
        facts = text.facts
        facts.format = .perfData
        if let consumerError { throw consumerError }
        let detail = message.isEmpty ? "" : ": " + message
        let signal = process.terminationReason == .uncaughtSignal ? process.terminationStatus : 0
        // A SIGPIPE after the text reader gave up is ours; any other end is perf's own.
        let ours = readError != nil && (signal == SIGPIPE || signal == SIGTERM)
        if signal != 0, !ours {
            throw IngestError(path: path, problem: "perf script crashed (signal \(signal)) reading this perf.data (truncated or corrupted?)\(detail)")
        }
        if signal == 0, process.terminationStatus != 0 {
            throw IngestError(path: path, problem: "perf script failed (exit status \(process.terminationStatus))\(detail)")
        }
        if let readError { throw readError }
        return stats!
    }
}

/// Drains a child's stderr on its own thread (a full pipe would stall the child), keeping the
/// last lines for the error message. libtraceevent's warnings about event formats it cannot
/// parse (perf prints those on every run) are not the failure, so they are left out.
private final class StderrCollector: @unchecked Sendable {
    private var data = Data()
    private let lock = NSLock()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                lock.withLock {
                    data.append(chunk)
                    if data.count > 1 << 16 { data = Data(data.suffix(1 << 15)) }
                }
            }
            done.signal()
        }
    }

    func finish() -> String {
        done.wait()
        let text = lock.withLock { String(decoding: data, as: UTF8.self) }
        let noise = ["libtraceevent:", "Error: expected type", "bad op token", "[dma:", "Warning:", "Check IO/CPU overload", "Processed "]
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { l in !l.isEmpty && !noise.contains(where: { l.hasPrefix($0) }) }
        return lines.suffix(4).joined(separator: "; ")
    }
}
