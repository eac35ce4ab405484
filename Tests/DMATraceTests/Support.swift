import Foundation
@testable import DMATrace

enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let samples = root.appendingPathComponent("SampleTraces")

    static func sample(_ name: String) -> String { samples.appendingPathComponent(name).path }

    static let realTraces = [
        "k6.12-nvme-e1000e-ahci-xhci.dat",
        "k6.12-iommu.dat",
        "k6.12-swiotlb.dat",
        "k7.3-nvme-e1000e-ahci-xhci.dat",
    ]

    private static let scratchPrefix = "dma-trace-tests-"

    /// This test process's scratch folders, removed when it exits (they reach ~900 MB a run: a
    /// machine that ran the suite a few dozen times had a full disk). Folders of earlier runs
    /// whose process is gone (killed, or crashed before exit) are removed on the way in.
    private static let scratchRoot: URL = {
        let fm = FileManager.default
        let mine = scratchPrefix + String(getpid())
        for name in (try? fm.contentsOfDirectory(atPath: fm.temporaryDirectory.path)) ?? []
        where name.hasPrefix(scratchPrefix) && name != mine {
            guard let pid = Int32(name.dropFirst(scratchPrefix.count)), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? fm.removeItem(at: fm.temporaryDirectory.appendingPathComponent(name))
        }
        atexit {
            let fm = FileManager.default
            try? fm.removeItem(at: fm.temporaryDirectory.appendingPathComponent("dma-trace-tests-" + String(getpid())))
        }
        return fm.temporaryDirectory.appendingPathComponent(mine)
    }()

    /// A scratch folder the test owns.
    static func scratch(_ name: String = #function) throws -> URL {
        let dir = scratchRoot.appendingPathComponent(name.filter { $0.isLetter || $0.isNumber })
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    static func analyze(text: String, name: String = "example.txt") throws -> AnalysisResult {
        try Analyzer.analyze(source: TextTraceReader(name: name, text: text))
    }

    static func events(text: String) throws -> ([DMAEvent], IngestStats) {
        var out: [DMAEvent] = []
        let stats = try TextTraceReader(name: "inline.txt", text: text).read { out.append($0) }
        return (out, stats)
    }

    static func events(path: String) throws -> [DMAEvent] {
        var out: [DMAEvent] = []
        _ = try TraceOpener.open(path: path).read { out.append($0) }
        return out
    }

    /// The built command-line tool, next to the test bundle.
    static var binary: URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("dma-trace"),
            Bundle.main.bundleURL.appendingPathComponent("dma-trace"),
            root.appendingPathComponent(".build/debug/dma-trace"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates.last!
    }

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ args: [String], executable: String? = nil, environment: [String: String]? = nil) throws -> Run {
        let p = Process()
        p.executableURL = executable.map { URL(fileURLWithPath: $0) } ?? binary
        p.arguments = args
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read before waiting: a full pipe would block the child.
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
}

/// Processes the tests start, signal and look for afterwards.
enum Processes {
    struct Started {
        var process: Process
        var stdoutFile: URL
        var stderrFile: URL
        var stdout: String { (try? String(contentsOf: stdoutFile, encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }
        var pid: pid_t { process.processIdentifier }
    }

    /// Starts `executable` (default: the tool) with its output in files under `dir`.
    static func start(_ args: [String], executable: String? = nil, in dir: URL, stdout: FileHandle? = nil) throws -> Started {
        let p = Process()
        p.executableURL = executable.map { URL(fileURLWithPath: $0) } ?? Fixtures.binary
        p.arguments = args
        let out = dir.appendingPathComponent("stdout-\(UUID().uuidString)")
        let err = dir.appendingPathComponent("stderr-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardOutput = try stdout ?? FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        try p.run()
        return Started(process: p, stdoutFile: out, stderrFile: err)
    }

    /// Polls `condition` for up to `seconds`; a condition that never holds fails the test there.
    static func waitFor(_ what: String, seconds: Double = 60, _ condition: () -> Bool) throws {
        let end = Date().addingTimeInterval(seconds)
        while !condition() {
            guard Date() < end else { throw Timeout(what: what) }
            usleep(20_000)
        }
    }

    struct Timeout: Error, CustomStringConvertible {
        var what: String
        var description: String { "gave up waiting for \(what)" }
    }

    /// Running, or stopped: not gone and not a zombie waiting to be reaped.
    static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)]
        return state != "Z" && state != "X"
    }

    /// Living processes whose command line contains `text`.
    static func living(commandLineContaining text: String) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.filter { pid in
            guard pid != getpid(), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let line = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            return line.contains(text) && isAlive(pid)
        }
    }

    /// The children of every thread of `pid`.
    static func children(of pid: pid_t) -> [pid_t] {
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return threads.flatMap { t -> [pid_t] in
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(t)/children", encoding: .utf8)) ?? ""
            return text.split(separator: " ").compactMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }

    /// Whether `pid` has `path` open (it got past start-up and is reading it).
    static func hasOpen(_ pid: pid_t, _ path: String) -> Bool {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        return fds.contains { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) == path }
    }
}
