import Foundation
import Testing
@testable import DMATrace

/// The lab's perf recordings (SampleTraces/perf, made by SampleTraces/lab/record-perf.sh): in
/// each boot `perf record` and `trace-cmd record` traced the same workload at once, so the
/// perf script text, the perf.data read through perf, and the trace-cmd report of the same run
/// must agree.
@Suite struct PerfRecordingTests {
    static let folder = Fixtures.samples.appendingPathComponent("perf")
    static var runs: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { $0.hasSuffix(".perf.data") }.map { String($0.dropLast(10)) }.sorted()
    }
    static func file(_ run: String, _ suffix: String) -> String { folder.appendingPathComponent(run + suffix).path }

    /// Which fault-injection variant of scenarios.json a run corresponds to.
    static let variantOfRun = [
        "fi-6.12-plain": "x86-6.12-plain", "fi-6.12-plain-g": "x86-6.12-plain-stacks",
        "fi-6.12-swiotlb": "x86-6.12-swiotlb", "fi-6.12-iommu": "x86-6.12-iommu", "fi-7.3-plain": "x86-7.3-plain",
    ]

    struct Key: Hashable, Comparable, CustomStringConvertible {
        var device: String, kind: String
        static func < (a: Key, b: Key) -> Bool { (a.device, a.kind) < (b.device, b.kind) }
        var description: String { "\(device) \(kind)" }
    }

    static func counts(_ events: [DMAEvent]) -> [Key: Int] {
        var c: [Key: Int] = [:]
        for e in events {
            guard let d = e.device else { continue }
            c[Key(device: d, kind: e.kind.name), default: 0] += 1
        }
        return c
    }

    @Test func everyRunIsThere() {
        #expect(Self.runs.count >= 5, "\(Self.runs)")
        for r in Self.runs {
            for suffix in [".perf.txt", ".trace-cmd.txt"] {
                #expect(FileManager.default.fileExists(atPath: Self.file(r, suffix)), "\(r)\(suffix)")
            }
        }
    }

    /// Same devices, same kinds, same count per device and kind. perf samples every tracepoint
    /// hit (period 1) and these runs lost nothing, so "within what sampling loses" is zero here;
    /// a lost-sample count, if there were one, is the tolerance.
    @Test(arguments: runs)
    func perfAndTraceCmdSeeTheSameEvents(_ run: String) throws {
        var perf: [DMAEvent] = [], traceCmd: [DMAEvent] = []
        let perfStats = try TraceOpener.open(path: Self.file(run, ".perf.txt")).read { perf.append($0) }
        let tcStats = try TraceOpener.open(path: Self.file(run, ".trace-cmd.txt")).read { traceCmd.append($0) }
        #expect(perfStats.unreadableLines == 0 && tcStats.unreadableLines == 0)
        // guest/init stops perf first and trace-cmd seconds later: what came after perf's last
        // event is only in trace-cmd's file. (The tools stamp an event separately, both on
        // CLOCK_MONOTONIC: the same event's times differ by well under a millisecond.)
        let perfEnd = try #require(perf.last?.timestamp) + 1_000_000
        traceCmd = traceCmd.filter { $0.timestamp <= perfEnd }
        let tolerance = Int(perfStats.lostEventsCounted + tcStats.lostEventsCounted)
        let p = Self.counts(perf), t = Self.counts(traceCmd)
        #expect(Set(p.keys.map(\.device)) == Set(t.keys.map(\.device)))
        #expect(Set(p.keys) == Set(t.keys), "kinds differ: \(Set(p.keys).symmetricDifference(t.keys).sorted())")
        let off = p.keys.filter { abs((p[$0] ?? 0) - (t[$0] ?? 0)) > tolerance }.sorted()
        #expect(off.isEmpty, "\(run): \(off.map { "\($0): perf \(p[$0] ?? 0), trace-cmd \(t[$0] ?? 0)" })")
        // And event for event: the same details (the clocks differ: perf's -k mono, ftrace's local).
        let pd = perf.filter { $0.device != nil }.map { "\($0.device!) \($0.kind.name) \($0.kind.details)" }.sorted()
        let td = traceCmd.filter { $0.device != nil }.map { "\($0.device!) \($0.kind.name) \($0.kind.details)" }.sorted()
        #expect(pd == td)
        // The markers: trace_marker lines in trace-cmd, the same text as kernel log lines in perf.
        // (The last one, "LAB: phase stop-recording", is written after perf has stopped.)
        let tm = traceCmd.compactMap { e -> String? in if case .marker(let s) = e.kind { return s }; return nil }
            .filter { $0 != "LAB: phase stop-recording" }
        let pm = Set(perf.compactMap { e -> String? in if case .marker(let s) = e.kind { return s }; return nil })
        #expect(!tm.isEmpty && tm.allSatisfy { pm.contains($0) }, "\(tm.filter { !pm.contains($0) }.prefix(5))")
    }

    @Test(arguments: runs)
    func perfAndTraceCmdGiveTheSameFindings(_ run: String) throws {
        func key(_ r: AnalysisResult) -> [String] {
            r.findings.map { "\($0.rule) \($0.severity) \($0.device) ×\($0.occurrences)" }.sorted()
        }
        let perf = try Analyzer.analyze(path: Self.file(run, ".perf.txt"))
        let traceCmd = try Analyzer.analyze(path: Self.file(run, ".trace-cmd.txt"))
        #expect(key(perf) == key(traceCmd))
    }

    /// perf.data itself, through `perf script` (bookworm's linux-perf, Scripts/setup.sh): the
    /// events of the text the guest's perf printed, with nanoseconds instead of microseconds.
    @Test(arguments: runs)
    func perfDataThroughPerfMatchesItsText(_ run: String) throws {
        _ = try #require(PerfDataReader.perfExecutable(), "perf is needed (apt-get install linux-perf)")
        let source = try TraceOpener.open(path: Self.file(run, ".perf.data"))
        var data: [DMAEvent] = [], text: [DMAEvent] = []
        _ = try source.read { data.append($0) }
        _ = try TraceOpener.open(path: Self.file(run, ".perf.txt")).read { text.append($0) }
        #expect(source.facts.format == .perfData)
        #expect(source.facts.kernelRelease?.hasPrefix(run.contains("7.3") ? "7.3" : "6.12") == true)
        #expect(data.count == text.count)
        var mismatches: [String] = []
        for (d, t) in zip(data, text) {
            var rounded = d
            rounded.timestamp = d.timestamp / 1000 * 1000
            // perf on this machine symbolizes with this machine's kernel, not the guest's.
            rounded.stack = nil
            var t2 = t
            t2.stack = nil
            if rounded != t2 { mismatches.append("perf.data \(d.line)\ntext      \(t.line)") }
            if mismatches.count > 3 { break }
        }
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
    }

    @Test func callchainsOfTheGRecordingAreStacks() throws {
        var events: [DMAEvent] = []
        _ = try TraceOpener.open(path: Self.file("fi-6.12-plain-g", ".perf.txt")).read { events.append($0) }
        let dma = events.filter { $0.device != nil }
        #expect(!dma.isEmpty && dma.allSatisfy { ($0.stack?.frames.count ?? 0) >= 3 })
        let sites = Set(dma.compactMap { RuleContext.callSite($0.stack) })
        #expect(sites.contains("nvme_prep_rq.part.0") || sites.contains { $0.hasPrefix("nvme_") }, "\(sites.sorted().prefix(20))")
        // Findings carry the stack. The guest's perf did not symbolize the out-of-tree dmafi.ko
        // (loaded from /lab, not /lib/modules): its frames are addresses, which give no call site.
        let result = try Analyzer.analyze(path: Self.file("fi-6.12-plain-g", ".perf.txt"))
        let du = try #require(result.findings.first { $0.rule == "double-unmap" })
        let frames = du.stack?.frames ?? []
        #expect(frames.contains { $0.hasPrefix("dma_unmap_page_attrs+") } && frames.contains { $0.hasPrefix("0xffffffffc") }, "\(frames)")
        #expect(du.callSite == nil)
    }

    /// The fault-injection scenarios recorded through perf: inside each scenario's window (its
    /// markers, which perf has as kernel log lines), exactly what scenarios.json expects of the
    /// trace-cmd recording of that variant.
    @Test(arguments: runs.filter { variantOfRun[$0] != nil })
    func faultInjectionFindingsThroughPerf(_ run: String) throws {
        let variant = try #require(Self.variantOfRun[run])
        for path in [Self.file(run, ".perf.txt"), Self.file(run, ".trace-cmd.txt")] {
            try FaultInjectionTests.checkScenarios(path: path, variant: variant)
        }
    }

    /// A real recording that lost events (perf -m 1 behind CPU hogs): every PERF_RECORD_LOST
    /// line is a gap with its count, and the findings it could explain are notes.
    @Test func lostRecordsOfARealLossyRecording() throws {
        let path = Self.folder.appendingPathComponent("lossy-6.12.head.txt").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lostLines = text.split(separator: "\n").filter { $0.contains(" PERF_RECORD_LOST lost ") }
        let stated = lostLines.compactMap { UInt64($0.split(separator: " ").last ?? "") }.reduce(0, +)
        #expect(lostLines.count >= 5 && stated > 0)
        let result = try Analyzer.analyze(path: path)
        #expect(result.stats.lostGaps == UInt64(lostLines.count) && result.stats.lostEventsCounted == stated)
        #expect(result.stats.unreadableLines <= 1, "\(result.stats.unreadableSamples.map(\.text))")   // the cut last line
        #expect(result.findings.contains { $0.rule == "events-lost" && $0.severity == .warning })
        #expect(!result.findings.contains { $0.severity >= .error }, "\(result.findings.filter { $0.severity >= .error }.map(\.message))")
    }

    // MARK: - perf.data on the command line

    static func run(_ args: [String], path: String? = nil) throws -> Fixtures.Run {
        var env = ProcessInfo.processInfo.environment
        if let path { env["PATH"] = path }
        env["DMA_TRACE_PERF"] = nil
        return try Fixtures.run(args, environment: env)
    }

    @Test func commandsReadPerfData() throws {
        _ = try #require(PerfDataReader.perfExecutable(), "perf is needed (apt-get install linux-perf)")
        let data = Self.file("io-6.12-plain", ".perf.data")
        let info = try Self.run(["info", data])
        #expect(info.status == 0 && info.stdout.contains("perf.data (through perf script)") && info.stdout.contains("0000:00:03.0"), "\(info.stderr)")
        let count = try Self.run(["events", "--count", data])
        #expect(count.status == 0, "\(count.stderr)")
        let analyze = try Self.run(["analyze", "--format", "json", data])
        #expect(analyze.status == 0, "\(analyze.stderr)")
        let dir = try Fixtures.scratch()
        let html = dir.appendingPathComponent("r.html").path
        let report = try Self.run(["report", data, "-o", html])
        #expect(report.status == 0 && FileManager.default.fileExists(atPath: html), "\(report.stderr)")
        let audit = try Self.run(["audit", Self.folder.path, "--fail-on", "none"])
        #expect(audit.status == 0 && audit.stdout.contains("io-6.12-plain.perf.data"), "\(audit.stdout.suffix(400)) \(audit.stderr)")
    }

    @Test func perfMissingSaysWhatToInstall() throws {
        let empty = try Fixtures.scratch()
        let r = try Self.run(["analyze", Self.file("fi-6.12-plain", ".perf.data")], path: empty.path)
        #expect(r.status == 2)
        #expect(r.stderr.contains("fi-6.12-plain.perf.data") && r.stderr.contains("apt-get install linux-perf"), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    @Test func perfFailingGivesItsMessage() throws {
        _ = try #require(PerfDataReader.perfExecutable(), "perf is needed (apt-get install linux-perf)")
        let dir = try Fixtures.scratch()
        let whole = try Data(contentsOf: URL(fileURLWithPath: Self.file("fi-6.12-plain", ".perf.data")))
        for (name, bytes) in [("header.data", whole.prefix(3000)), ("half.data", whole.prefix(whole.count / 2)),
                              ("most.data", whole.prefix(whole.count * 3 / 4))] {
            let path = dir.appendingPathComponent(name).path
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let r = try Self.run(["analyze", path])
            #expect(r.status == 2, "\(name): \(r.status) \(r.stderr)")
            // perf 6.1 says "incompatible file format" (exit 255) or segfaults, depending on the cut.
            #expect(r.stderr.contains(name) && (r.stderr.contains("perf script failed (exit status") || r.stderr.contains("perf script crashed (signal")),
                    "\(name): \(r.stderr)")
        }
    }
}
