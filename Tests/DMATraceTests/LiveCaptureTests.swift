import CTraceShim
import Foundation
import Testing
@testable import DMATrace

/// The live capture against a fake tracefs directory (`--tracefs DIR`): the instance, its
/// options and events, the libtracefs raw readers (tracefs_cpu_* over per_cpu/cpuN/trace_pipe_raw)
/// and every way out. Never the machine's own tracefs. Serialized: a capture owns the
/// process's signal handlers and the instance cleanup registered with atexit.
@Suite(.serialized) struct LiveCaptureTests {
    final class Pages: LivePageSink {
        var pages: [Int: [[UInt8]]] = [:]
        var refuseAfter: Int?
        func take(page: [UInt8], cpu: Int) -> Bool {
            pages[cpu, default: []].append(page)
            if let limit = refuseAfter, pages.values.map(\.count).reduce(0, +) >= limit { return false }
            return true
        }
    }

    static func fake(_ name: String = #function, systems: Set<String>? = nil) throws -> FakeTracefs {
        let dir = try Fixtures.scratch(name)
        let v6 = try TraceDatWriterTests.v6Copy(of: "k6.12-stacks.dat", in: dir)
        return try FakeTracefs(at: dir.appendingPathComponent("tracefs"), from: v6, systems: systems)
    }

    static func capture(_ fake: FakeTracefs, name: String, command: [String] = ["true"],
                        configure: (inout LiveCapture.Options) -> Void = { _ in }) throws -> (LiveCapture, [String]) {
        var options = LiveCapture.Options()
        options.tracefs = fake.root.path
        options.instance.name = name
        options.command = command
        options.pollInterval = 0.001
        configure(&options)
        let capture = LiveCapture(options: options)
        var notes: [String] = []
        capture.notes = { notes.append($0) }
        try capture.prepare()
        return (capture, notes)
    }

    /// CPUs take turns of `pagesPerTurn` sub-buffers, during the capture and in the final drain:
    /// a busy CPU read to the end first let the others' rings fill meanwhile, and the merge
    /// held everything read until they caught up (551 MiB for a 3.1 M-event fake, 82 MiB now).
    @Test func cpusAreReadInBoundedTurns() throws {
        let fake = try Self.fake()
        _ = try fake.instance(named: "dma-trace-turns")
        #expect(fake.sections.pages[0].count > 4 && fake.sections.pages[1].count > 4)
        final class Order: LivePageSink {
            var cpus: [Int] = []
            var rounds = 0
            func take(page: [UInt8], cpu: Int) -> Bool { cpus.append(cpu); return true }
            var wantsClock: Bool { true }
            func roundEnded(now: UInt64?, unread: Set<Int>) -> Bool { rounds += 1; return true }
        }
        let (capture, _) = try Self.capture(fake, name: "dma-trace-turns") { $0.pagesPerTurn = 2 }
        let order = Order()
        let outcome = try capture.run(sink: order)
        #expect(outcome.pages == [0: fake.sections.pages[0].count, 1: fake.sections.pages[1].count])
        // No run of one CPU longer than a turn while the other still had pages.
        let last0 = order.cpus.lastIndex(of: 0)!, last1 = order.cpus.lastIndex(of: 1)!
        var run = 0, longest = 0
        for (i, cpu) in order.cpus.enumerated() where i <= min(last0, last1) {
            run = i > 0 && order.cpus[i - 1] == cpu ? run + 1 : 1
            longest = max(longest, run)
        }
        #expect(longest <= 2, "\(order.cpus)")
        #expect(order.rounds > 2)
    }

    /// Both ways of reading: tracefs_cpu_read (partly filled pages too: watch) and
    /// tracefs_cpu_buffered_read through a pipe (filled pages only: record), each with tracefs_cpu_flush at the end.
    @Test(arguments: [false, true]) func readsEveryRawPageThroughLibtracefsAndRemovesTheInstance(fullOnly: Bool) throws {
        let fake = try Self.fake("readsEveryRawPage\(fullOnly)")
        _ = try fake.instance(named: "dma-trace-test1")
        var options = LiveCapture.Options()
        options.tracefs = fake.root.path
        options.instance.name = "dma-trace-test1"
        options.instance.bufferKB = 4096
        options.instance.stacks = true
        options.command = ["true"]
        options.pollInterval = 0.001
        options.fullPagesOnly = fullOnly
        let capture = LiveCapture(options: options)
        var notes: [String] = []
        capture.notes = { notes.append($0) }
        try capture.prepare()
        // The instance's settings, as the kernel would have received them, just before teardown.
        final class Spy: LivePageSink {
            let fake: FakeTracefs
            var seen: [String: String] = [:]
            var pages: [Int: [[UInt8]]] = [:]
            init(_ fake: FakeTracefs) { self.fake = fake }
            func take(page: [UInt8], cpu: Int) -> Bool {
                for f in ["buffer_size_kb", "options/stacktrace", "events/dma/enable", "events/iommu/enable", "tracing_on"] {
                    seen[f] = fake.read("dma-trace-test1", f)
                }
                pages[cpu, default: []].append(page)
                return true
            }
        }
        let spy = Spy(fake)
        let outcome = try capture.run(sink: spy)
        #expect(outcome.stop == .commandExited(status: 0))
        #expect(spy.pages[0] == fake.sections.pages[0])
        #expect(spy.pages[1] == fake.sections.pages[1])
        #expect(outcome.pages == [0: fake.sections.pages[0].count, 1: fake.sections.pages[1].count])
        #expect(spy.seen["buffer_size_kb"] == "4096")
        #expect(spy.seen["options/stacktrace"] == "1")
        #expect(spy.seen["events/dma/enable"] == "1")
        #expect(spy.seen["tracing_on"] == "1")
        #expect(notes.contains { $0.contains("tracing dma (") && $0.contains("dma_map_page") })
        #expect(outcome.instanceProblem == nil)
        #expect(!FileManager.default.fileExists(atPath: fake.instanceDir("dma-trace-test1").path))
        #expect(outcome.metadata.kallsyms == fake.sections.metadata.kallsyms)
        #expect(outcome.metadata.cpuStats.count == 2)
    }

    @Test func anErrorStillRemovesTheInstance() throws {
        let fake = try Self.fake()
        let dir = try fake.instance(named: "dma-trace-test2")
        // A kernel that refuses the option: configuring fails after the instance exists.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("options/stacktrace"))
        let (capture, _) = try Self.capture(fake, name: "dma-trace-test2") { $0.instance.stacks = true }
        #expect(throws: LiveError.self) { try capture.run(sink: Pages()) }
        #expect(!FileManager.default.fileExists(atPath: dir.path))
    }

    @Test func instanceRemovedFromOutsideIsAFault() throws {
        let fake = try Self.fake()
        let dir = try fake.instance(named: "dma-trace-test3")
        let (capture, _) = try Self.capture(fake, name: "dma-trace-test3",
                                            command: ["/bin/sh", "-c", "rm -rf '\(dir.path)'; sleep 2"])
        do {
            _ = try capture.run(sink: Pages())
            Issue.record("the capture went on without its instance")
        } catch let e as LiveError {
            #expect(e.message.contains("was removed from outside"))
        }
    }

    @Test func staleInstancesAreNotedAndCleaned() throws {
        let fake = try Self.fake()
        _ = try fake.instance(named: "dma-trace-test4")
        // pid 2^22+1 is above pid_max's largest value: never alive.
        _ = try fake.instance(named: "dma-trace-4194305")
        let (_, notes) = try Self.capture(fake, name: "dma-trace-test4")
        #expect(notes.contains { $0.contains("instances/dma-trace-4194305") && $0.contains("--clean-stale") })
        #expect(FileManager.default.fileExists(atPath: fake.instanceDir("dma-trace-4194305").path))
        let (_, after) = try Self.capture(fake, name: "dma-trace-test4") { $0.cleanStale = true }
        #expect(after.contains("removed stale instance dma-trace-4194305"))
        #expect(!FileManager.default.fileExists(atPath: fake.instanceDir("dma-trace-4194305").path))
        // Our own pid's instance name is never stale.
        #expect(StaleInstances.find(mount: try TracefsMount.locate(fake.root.path)).isEmpty)
    }

    @Test func aKernelWithoutTheDMAEventsIsNamed() throws {
        let fake = try Self.fake(systems: ["swiotlb", "iommu"])
        do {
            _ = try Self.capture(fake, name: "dma-trace-test5")
            Issue.record("no error")
        } catch let e as LiveError {
            #expect(e.message == "kernel 6.12.117+deb13-amd64 has no dma events (they arrived in Linux 6.12; this kernel has only swiotlb and iommu); --allow-partial watches what exists")
        }
        _ = try fake.instance(named: "dma-trace-test5")
        let (capture, _) = try Self.capture(fake, name: "dma-trace-test5") { $0.allowPartial = true }
        let outcome = try capture.run(sink: Pages())
        #expect(outcome.metadata.systems.map(\.name) == ["swiotlb", "iommu"])
        #expect(fake.read("dma-trace-test5", "events/swiotlb/enable") == nil)
    }

    @Test func badUseIsRefusedBeforeAnythingIsEnabled() throws {
        let fake = try Self.fake()
        #expect(throws: LiveError.self) { try TracefsMount.locate(nil, euid: 1000) }
        do {
            _ = try TracefsMount.locate(nil, euid: 1000)
        } catch let e as LiveError {
            #expect(e.message.hasPrefix("live capture needs root"))
        }
        do {
            _ = try Self.capture(fake, name: "dma-trace-test6", command: ["no-such-command-dma-trace"])
            Issue.record("no error")
        } catch let e as LiveError {
            #expect(e.message == "command not found: no-such-command-dma-trace")
        }
        do {
            _ = try TracefsMount.locate(fake.root.appendingPathComponent("events").path)
            Issue.record("no error")
        } catch let e as LiveError {
            #expect(e.message.contains("no tracefs at") && e.message.contains("events/header_page"))
        }
        #expect(!FileManager.default.fileExists(atPath: fake.instanceDir("dma-trace-test6").path))
    }

    @Test func theSinkStopsTheCapture() throws {
        let fake = try Self.fake()
        _ = try fake.instance(named: "dma-trace-test7")
        let (capture, _) = try Self.capture(fake, name: "dma-trace-test7", command: ["sleep", "5"])
        let sink = Pages()
        sink.refuseAfter = 3
        let outcome = try capture.run(sink: sink)
        #expect(outcome.stop == .sinkFull)
        #expect(sink.pages.values.map(\.count).reduce(0, +) == 3)
        #expect(!FileManager.default.fileExists(atPath: fake.instanceDir("dma-trace-test7").path))
    }

    /// `dma-trace record` as a process, stopped by SIGTERM: the capture ends in order (the
    /// traced command gets the signal too), the file is written, the instance is gone.
    @Test func sigtermEndsRecordInOrder() throws {
        let fake = try Self.fake()
        // The shell lays out the instance the kernel would make for its own pid, then becomes
        // dma-trace with that pid.
        let staged = try fake.stage(fake.instance(named: "template"))
        let out = fake.root.deletingLastPathComponent().appendingPathComponent("sigterm.dat").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", fake.asOwnInstance(staged, "record", "-o '\(out)' -- sleep 30")]
        let err = Pipe()
        p.standardError = err
        try p.run()
        let instance = fake.instanceDir("dma-trace-\(p.processIdentifier)")
        // Wait (bounded) until tracing is on in the instance, then stop it.
        var on = false
        for _ in 0..<300 where !on {
            usleep(20_000)
            on = fake.read("dma-trace-\(p.processIdentifier)", "events/dma/enable") == "1"
        }
        #expect(on)
        kill(p.processIdentifier, SIGTERM)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 128 + SIGTERM, "\(stderr)")
        #expect(stderr.contains("stopped by signal 15"), "\(stderr)")
        #expect(!FileManager.default.fileExists(atPath: instance.path))
        let written = try TraceDatV6Sections(path: out)
        #expect(written.pages == fake.sections.pages)
        #expect(Self.leftovers(fake.root.deletingLastPathComponent()).isEmpty)
    }

    /// Files record leaves next to its output: spools (`.NAME.cpuN-XXXXXX`) and the unfinished
    /// file (`.NAME.tmp-XXXXXX`).
    static func leftovers(_ dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.contains(".cpu") || $0.contains(".tmp-") }
    }

    /// `record` started from a shell that first lays out the instance the kernel would make for
    /// its pid (the shell's, kept by exec).
    static func startRecord(_ fake: FakeTracefs, staged: URL, out: String, command: String, in dir: URL) throws -> Processes.Started {
        try Processes.start(["-c", fake.asOwnInstance(staged, "record", "-o '\(out)' -- \(command)")],
                            executable: "/bin/sh", in: dir)
    }

    /// A fake tracefs with an instance staged to be copied in under record's pid, and an old
    /// file `name` (holding "OLD") for record to write over.
    static func recordOverAnOldFile(_ name: String, test: String = #function) throws -> (FakeTracefs, URL, URL, URL) {
        let fake = try Self.fake(test)
        let dir = fake.root.deletingLastPathComponent()
        let staged = try fake.stage(fake.instance(named: "template"))
        let out = dir.appendingPathComponent(name)
        try "OLD\n".write(to: out, atomically: false, encoding: .utf8)
        return (fake, dir, staged, out)
    }

    /// A second SIGTERM while the capture is ending (tracing is off, record waits for the
    /// traced command, which ignores SIGTERM): the instance, the spools and the unfinished
    /// file go, the old file stays, and the process ends by the signal.
    @Test func aSecondSignalDuringTheCleanupLeavesNothingBehind() throws {
        let (fake, dir, staged, out) = try Self.recordOverAnOldFile("second-signal.dat")
        let run = try Self.startRecord(fake, staged: staged, out: out.path, command: "sh -c 'trap \"\" TERM; sleep 8'", in: dir)
        defer { kill(run.pid, SIGKILL); run.process.waitUntilExit() }
        let instance = "dma-trace-\(run.pid)"
        try Processes.waitFor("tracing on and the pages spooled") {
            fake.read(instance, "events/dma/enable") == "1" && Self.leftovers(dir).contains { $0.contains(".cpu1-") }
        }
        kill(run.pid, SIGTERM)
        try Processes.waitFor("tracing off") { fake.read(instance, "tracing_on") == "0" }
        #expect(FileManager.default.fileExists(atPath: fake.instanceDir(instance).path))
        kill(run.pid, SIGTERM)
        run.process.waitUntilExit()
        #expect(run.process.terminationReason == .uncaughtSignal && run.process.terminationStatus == SIGTERM, "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: fake.instanceDir(instance).path))
        #expect(Self.leftovers(dir).isEmpty, "\(Self.leftovers(dir))")
        #expect(try String(contentsOf: out, encoding: .utf8) == "OLD\n")
    }

    /// A signal while the trace.dat is being written (strace holds record's main thread in the
    /// fsync of the finished file, up to 60 s): the cleanup thread removes the unfinished file,
    /// and the old one is still there once the main thread is let go (the rename never came).
    @Test func aSignalWhileWritingKeepsTheOldFile() throws {
        let strace = try #require(Fixtures.which("strace"), "Scripts/setup.sh installs strace")
        let (fake, dir, staged, out) = try Self.recordOverAnOldFile("while-writing.dat")
        let run = try Self.startRecord(fake, staged: staged, out: out.path, command: "sleep 1", in: dir)
        defer { kill(run.pid, SIGKILL); run.process.waitUntilExit() }
        try Processes.waitFor("tracing on") { fake.read("dma-trace-\(run.pid)", "events/dma/enable") == "1" }
        // Only the main thread (the tid given): the cleanup thread runs free.
        let tracer = try Processes.start(["-o", "/dev/null", "-p", "\(run.pid)", "-e", "trace=fsync",
                                          "-e", "inject=fsync:delay_exit=60000000:when=1"], executable: strace, in: dir)
        defer { kill(tracer.pid, SIGKILL); tracer.process.waitUntilExit() }
        try Processes.waitFor("the main thread to be held in fsync") { OutputFaultTests.heldInFsync(run.pid) }
        #expect(Self.leftovers(dir).contains { $0.contains(".tmp-") })
        kill(run.pid, SIGTERM)
        try Processes.waitFor("the cleanup to remove the unfinished file") { Self.leftovers(dir).isEmpty }
        kill(tracer.pid, SIGKILL)
        try Processes.waitFor("record to end") { !Processes.isAlive(run.pid) }
        #expect(try String(contentsOf: out, encoding: .utf8) == "OLD\n")
        #expect(Self.leftovers(dir).isEmpty, "\(Self.leftovers(dir))")
    }

    /// Raw pages saved from a guest, read through libtracefs, the page decoder, the merge and the
    /// record decoder: the same events, and the same findings, as the trace.dat they came from.
    @Test func liveDecodingGivesTheEventsAndFindingsOfTheRecording() throws {
        let fake = try Self.fake()
        let v6 = fake.root.deletingLastPathComponent().appendingPathComponent("original-v6.dat").path
        _ = try fake.instance(named: "dma-trace-test8")
        let (capture, _) = try Self.capture(fake, name: "dma-trace-test8")
        let source = LiveEventSource(capture: capture)
        var live: [DMAEvent] = []
        let stats = try source.read { live.append($0) }
        let recorded = try Fixtures.events(path: v6)
        #expect(live.count == recorded.count && live.count > 300)
        #expect(zip(live, recorded).allSatisfy { $0 == $1 })
        #expect(stats.stackRecords > 300)
        #expect(live.contains { $0.stack?.frames.first?.contains("+0x") == true })
        #expect(source.lateEvents == 0)

        _ = try fake.instance(named: "dma-trace-test8")
        let (again, _) = try Self.capture(fake, name: "dma-trace-test8")
        var streamed: [Finding] = []
        let watched = try Analyzer.analyze(source: LiveEventSource(capture: again)) { streamed.append($0) }
        let analyzed = try Analyzer.analyze(path: v6)
        let key = { (f: Finding) in "\(f.rule) \(f.severity) \(f.device) \(f.timestamp) \(f.message)" }
        #expect(watched.findings.map(key) == analyzed.findings.map(key))
        #expect(Set(streamed.map(key)) == Set(analyzed.findings.map(key)))
        #expect(watched.facts.format == .live)
    }

    /// A driver loaded after tracing started (the usual case: the tests load it) is missing
    /// from the kallsyms of the start. The recording's nvme and e1000e were loaded after
    /// trace-cmd started and were still loaded when it saved kallsyms: the fake starts with a
    /// kallsyms and a module list without them and empty ring buffers; the traced command
    /// "loads" them (the full kallsyms, a module list naming them), then their events appear
    /// (the pages are appended to trace_pipe_raw). The stacks must be the recording's, frame
    /// for frame, and so the findings' call sites and fingerprints.
    @Test(arguments: [true, false]) func driversLoadedDuringTheCaptureAreSymbolized(loads: Bool) throws {
        let fake = try Self.fake("driversLoaded\(loads)")
        let staged = fake.root.deletingLastPathComponent()
        let v6 = staged.appendingPathComponent("original-v6.dat").path
        let full = fake.sections.metadata.kallsyms
        let lines = String(decoding: full, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let isDriver = { (line: Substring) in line.hasSuffix("[nvme]") || line.hasSuffix("[e1000e]") }
        #expect(lines.filter(isDriver).count > 100)
        try lines.filter { !isDriver($0) }.joined(separator: "\n").write(to: fake.root.appendingPathComponent("kallsyms"), atomically: true, encoding: .utf8)
        try Data(full).write(to: staged.appendingPathComponent("kallsyms-loaded"))
        try "ahci 49152 0 - Live 0xffffffffc02c0000\n".write(to: fake.root.appendingPathComponent("modules"), atomically: true, encoding: .utf8)
        try "ahci 49152 0 - Live 0xffffffffc02c0000\nnvme 57344 0 - Live 0xffffffffc02e0000\ne1000e 360448 0 - Live 0xffffffffc04f0000\n"
            .write(to: staged.appendingPathComponent("modules-loaded"), atomically: true, encoding: .utf8)
        let dir = try fake.instance(named: "dma-trace-test11")
        var appends: [String] = []
        for cpu in 0..<2 {
            let raw = dir.appendingPathComponent("per_cpu/cpu\(cpu)/trace_pipe_raw")
            try FileManager.default.moveItem(at: raw, to: staged.appendingPathComponent("pages\(cpu)"))
            try Data().write(to: raw)
            // The ring buffer's clock at 0: a CPU that has not delivered yet holds the merge (with
            // the fixture's 100 s the other CPU's events would all be handed on before these come).
            try "entries: 0\noverrun: 0\ncommit overrun: 0\nbytes: 0\nnow ts: 0.000000\ndropped events: 0\nread events: 0\n"
                .write(to: dir.appendingPathComponent("per_cpu/cpu\(cpu)/stats"), atomically: true, encoding: .utf8)
            // Whole pages at a time: a reader never sees part of one.
            appends.append("cat '\(staged.path)/pages\(cpu)' >> '\(raw.path)'")
        }
        let load = "cp '\(staged.path)/kallsyms-loaded' '\(fake.root.path)/kallsyms' && cp '\(staged.path)/modules-loaded' '\(fake.root.path)/modules'"
        let script = (loads ? [load] : []) + appends + ["sleep 0.2"]
        let (capture, _) = try Self.capture(fake, name: "dma-trace-test11", command: ["/bin/sh", "-c", script.joined(separator: " && ")])
        let source = LiveEventSource(capture: capture)
        var live: [DMAEvent] = []
        var streamed: [Finding] = []
        let watched = try Analyzer.analyze(source: Recording(source) { live.append($0) }) { streamed.append($0) }
        let analyzed = try Analyzer.analyze(path: v6)
        let recorded = try Fixtures.events(path: v6)
        let withDriverFrames = recorded.filter { $0.stack?.frames.contains { $0.hasPrefix("nvme_") || $0.hasPrefix("e1000") } == true }.count
        #expect(withDriverFrames > 200)
        #expect(live.count == recorded.count)
        let equal = zip(live, recorded).filter { $0 == $1 }.count
        let frames = { (f: Finding) in "\(f.rule) \(f.device) \(f.timestamp) \(f.stack?.frames ?? []) \(f.callSite ?? "-") \(f.fingerprint)" }
        if loads {
            #expect(equal == recorded.count)
            #expect(watched.findings.map(frames) == analyzed.findings.map(frames))
            #expect(streamed.map(frames).sorted() == analyzed.findings.map(frames).sorted())
            #expect(source.symbolTableLoads >= 2)
        } else {
            // Without the drivers' symbols their frames are addresses or another module's
            // names: the comparison above can tell.
            #expect(equal <= recorded.count - withDriverFrames)
            #expect(watched.findings.map(frames) != analyzed.findings.map(frames))
        }
    }

    /// Passes a source's events on and shows them to `seen` too.
    final class Recording: DMAEventSource {
        let inner: LiveEventSource
        let seen: (DMAEvent) -> Void
        init(_ inner: LiveEventSource, seen: @escaping (DMAEvent) -> Void) { self.inner = inner; self.seen = seen }
        var facts: TraceFacts { inner.facts }
        func read(_ handler: (DMAEvent) throws -> Void) throws -> IngestStats {
            try inner.read { seen($0); try handler($0) }
        }
    }

    /// The table is read again when the module list changes (not when a use count does), and
    /// names an address of the new module as the trace.dat path would.
    @Test func theSymbolTableFollowsTheModuleList() throws {
        let kallsyms = "ffffffff81000000 T _stext\nffffffff81001000 T do_one\nffffffffc02c0000 t ahci_probe\t[ahci]\nffffffffc02c0400 t ahci_end\t[ahci]\n"
        let loaded = kallsyms + "ffffffffc02e28b0 t nvme_alloc_queue\t[nvme]\nffffffffc02e2a00 t nvme_other\t[nvme]\n"
        let before = "ahci 49152 0 - Live 0xffffffffc02c0000\n"
        let symbols = LiveSymbols(kallsyms: Array(kallsyms.utf8), modules: before)
        let stack = KernelStack(frames: ["0xffffffff81001010", "0xffffffffc02e2907"], symbolSpans: [0, 0])
        #expect(symbols.symbolize(stack).frames == ["do_one+0x10", "0xffffffffc02e2907"])
        #expect(symbols.isCurrent(modules: "ahci 49152 3 - Live 0xffffffffc02c0000\n"))
        let after = before + "nvme 57344 0 - Live 0xffffffffc02e0000\n"
        #expect(!symbols.isCurrent(modules: after))
        symbols.load(kallsyms: Array(loaded.utf8), modules: after)
        let named = symbols.symbolize(stack)
        #expect(named.frames == ["do_one+0x10", "nvme_alloc_queue+0x57"])
        #expect(named.symbolSpans?[1] == 0x150)
        #expect(symbols.isCurrent(modules: after) && symbols.loads == 2)
        // A frame the record decoder already named stays as it is.
        #expect(symbols.symbolize(KernelStack(frames: ["x+0x1"])).frames == ["x+0x1"])
    }

    /// Events the ring buffer counted as overwritten or dropped beyond what its pages said
    /// become a gap, as a recorded trace's lost events do.
    @Test func ringBufferCountersBecomeLostEvents() throws {
        let fake = try Self.fake()
        let dir = try fake.instance(named: "dma-trace-test10")
        try "entries: 0\noverrun: 7\ncommit overrun: 0\nbytes: 0\nnow ts: 0.000000\ndropped events: 5\nread events: 0\n"
            .write(to: dir.appendingPathComponent("per_cpu/cpu1/stats"), atomically: true, encoding: .utf8)
        let (capture, _) = try Self.capture(fake, name: "dma-trace-test10")
        let result = try Analyzer.analyze(source: LiveEventSource(capture: capture))
        #expect(result.lostGaps.count == 1)
        #expect(result.lostGaps.first?.cpu == 1 && result.lostGaps.first?.count == 12)
        #expect(result.stats.lostEventsCounted == 12)
        #expect(result.findings.contains { $0.rule == "events-lost" })
    }

    @Test func theMergeWaitsForEveryCPU() {
        func event(_ ts: UInt64, _ cpu: Int32) -> DMAEvent {
            DMAEvent(timestamp: ts, cpu: cpu, pid: 1, task: "t", device: nil, kind: .marker("\(ts)"))
        }
        var merger = LiveMerger(window: 10, maxWindow: 15)
        merger.cpus = [0, 1, 2]
        var out: [UInt64] = []
        merger.add(event(100, 1)); merger.add(event(130, 1))
        merger.add(event(90, 0)); merger.add(event(120, 0))
        merger.release(upTo: 125) { out.append($0.timestamp) }
        // CPU 2 never spoke: read up to 125 - 10. CPU 0 delivered up to 120, CPU 1 up to 130.
        #expect(out == [90, 100])
        // CPU 0 and 1 spoke within the window: nothing newer than CPU 0's newest (120) may go,
        // and CPU 2 holds everything at 128 - 10.
        merger.release(upTo: 128) { out.append($0.timestamp) }
        #expect(out == [90, 100])
        // CPU 0 was slow to commit: its 125 still comes before CPU 1's 130.
        merger.add(event(125, 0))
        merger.release(upTo: 131) { out.append($0.timestamp) }
        #expect(out == [90, 100, 120])
        // CPU 0's stats still count an entry it could not give yet: quiet or not, it holds the rest.
        merger.release(upTo: 140, unread: [0]) { out.append($0.timestamp) }
        #expect(out == [90, 100, 120, 125])
        merger.release(upTo: 140) { out.append($0.timestamp) }
        #expect(out == [90, 100, 120, 125, 130])
        #expect(merger.late == 0)
        // Older than what went already: counted, and the window doubles (to at most 15).
        merger.add(event(115, 1))
        #expect(merger.late == 1)
        #expect(merger.window == 15)
        merger.release(upTo: nil) { out.append($0.timestamp) }
        #expect(out == [90, 100, 120, 125, 130, 115])
    }

    /// `dma-trace watch --format json -- CMD` as a process: NDJSON findings, then one summary
    /// object holding analyze's document; the command's failure gives exit 1 and a message.
    @Test func watchWritesNDJSON() throws {
        let fake = try Self.fake()
        let staged = try fake.stage(fake.instance(named: "template"))
        let v6 = fake.root.deletingLastPathComponent().appendingPathComponent("original-v6.dat").path
        let r = try Fixtures.run(["-c", fake.asOwnInstance(staged, "watch", "--format json --fail-on none -- sh -c 'echo not-json; test -n \"$DMA_TRACE_MARKER\" && exit 3'")],
                                 executable: "/bin/sh")
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("failed with exit status 3"), "\(r.stderr)")
        // The command's own output goes to stderr: stdout is NDJSON only.
        #expect(r.stderr.contains("not-json\n") && !r.stdout.split(separator: "\n").contains("not-json"))
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let objects = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let summary = try #require(objects.last?["summary"] as? [String: Any])
        let analysis = try #require(summary["analysis"] as? [String: Any])
        let findings = try #require(analysis["findings"] as? [[String: Any]])
        let analyzed = try Analyzer.analyze(path: v6).findings
        #expect(findings.count == analyzed.count)
        #expect(objects.dropLast().count == analyzed.count)
        #expect(Set(objects.dropLast().compactMap { $0["fingerprint"] as? String }) == Set(analyzed.map(\.fingerprint)))
        #expect((summary["command"] as? [String])?.first == "sh")
    }

    /// Not root: refused before tracefs is even looked at (setpriv drops to nobody). Also
    /// with `--tracefs` naming the mounted tracefs (only looked at: statfs), whose files
    /// nobody cannot see (in the lab this said "no tracefs at ...").
    @Test func notRootIsRefused() throws {
        guard let setpriv = Fixtures.which("setpriv"), geteuid() == 0 else { return }
        let mounted = dmatrace_is_tracefs("/sys/kernel/tracing") == 1
        for command in ["watch", "record"] + (mounted ? ["watch --tracefs /sys/kernel/tracing"] : []) {
            var args = ["--reuid=65534", "--regid=65534", "--clear-groups", Fixtures.binary.path] + command.split(separator: " ").map(String.init)
            if command == "record" { args += ["-o", "/nonexistent/x.dat"] }
            let r = try Fixtures.run(args + ["--", "true"], executable: setpriv)
            #expect(r.status == 2, "\(r.stderr)")
            #expect(r.stderr == "dma-trace: live capture needs root: it creates a tracefs instance under /sys/kernel/tracing (run it with sudo)\n")
        }
    }

    /// The kernel moves the top-level buffer to `global` when sched_clock is unstable, a new
    /// instance starts on `local`: ours follows the top-level buffer (or --clock).
    @Test func instanceFollowsTheTopLevelClock() throws {
        let fake = try Self.fake()
        try "local [global] counter uptime perf mono mono_raw boot tai x86-tsc\n".write(
            to: fake.root.appendingPathComponent("trace_clock"), atomically: true, encoding: .utf8)
        final class Clock: LivePageSink {
            let fake: FakeTracefs
            var seen: String?
            init(_ fake: FakeTracefs) { self.fake = fake }
            func take(page: [UInt8], cpu: Int) -> Bool {
                seen = fake.read("dma-trace-test9", "trace_clock")
                return true
            }
        }
        _ = try fake.instance(named: "dma-trace-test9")
        let (capture, _) = try Self.capture(fake, name: "dma-trace-test9")
        let sink = Clock(fake)
        _ = try capture.run(sink: sink)
        #expect(sink.seen == "global")
        _ = try fake.instance(named: "dma-trace-test9")
        let (other, _) = try Self.capture(fake, name: "dma-trace-test9") { $0.instance.clock = "no-such-clock" }
        do {
            _ = try other.run(sink: Clock(fake))
            Issue.record("no error")
        } catch let e as LiveError {
            #expect(e.message.hasPrefix("this kernel has no trace clock 'no-such-clock' (it has local, global"))
        }
        #expect(!FileManager.default.fileExists(atPath: fake.instanceDir("dma-trace-test9").path))
    }

    /// `record --analyze`: the file, and the analyze report of it.
    @Test func recordAnalyze() throws {
        let fake = try Self.fake()
        let staged = try fake.stage(fake.instance(named: "template"))
        let out = fake.root.deletingLastPathComponent().appendingPathComponent("analyzed.dat").path
        let r = try Fixtures.run(["-c", fake.asOwnInstance(staged, "record", "--analyze --fail-on none -o '\(out)' -- true")],
                                 executable: "/bin/sh")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("\(out): kernel"), "\(r.stdout.prefix(200))")
        #expect(r.stdout.contains("Findings: "))
        #expect(r.stderr.contains("wrote \(out): 2 CPUs, \(fake.sections.pages.joined().count) pages"), "\(r.stderr)")
        #expect(try TraceDatV6Sections(path: out).pages == fake.sections.pages)
    }

    /// A kernel whose instance has 8 KiB sub-buffers (`buffer_subbuf_size_kb`, Linux 6.8+; the
    /// instance's own events/header_page says so too) on 4 KiB pages: record reads 8 KiB at a
    /// time and writes a file of 8 KiB pages that trace-cmd and analyze read as the recording.
    @Test func recordUsesTheRingBuffersSubBufferSize() throws {
        let fake = try Self.fake()
        let v6 = fake.root.deletingLastPathComponent().appendingPathComponent("original-v6.dat").path
        #expect(fake.sections.metadata.pageSize == 4096)
        let template = try fake.instance(named: "template")
        // Each recorded page as an 8 KiB sub-buffer: the same header, commit word and data.
        let big = fake.sections.pages.map { $0.map { $0 + [UInt8](repeating: 0, count: 8192 - $0.count) } }
        for (cpu, pages) in big.enumerated() {
            try Data(pages.joined()).write(to: template.appendingPathComponent("per_cpu/cpu\(cpu)/trace_pipe_raw"))
        }
        try "8\n".write(to: template.appendingPathComponent("buffer_subbuf_size_kb"), atomically: true, encoding: .utf8)
        let topHeader = String(decoding: fake.sections.metadata.headerPage, as: UTF8.self)
        #expect(LiveInstance.subBufferSize(headerPage: topHeader) == 4096)
        let ownHeader = topHeader.replacingOccurrences(of: "data;\toffset:16;\tsize:4080;", with: "data;\toffset:16;\tsize:8176;")
        #expect(LiveInstance.subBufferSize(headerPage: ownHeader) == 8192)
        try FileManager.default.createDirectory(at: template.appendingPathComponent("events"), withIntermediateDirectories: true)
        try ownHeader.write(to: template.appendingPathComponent("events/header_page"), atomically: true, encoding: .utf8)
        let staged = try fake.stage(template)
        let out = fake.root.deletingLastPathComponent().appendingPathComponent("subbuf8k.dat").path
        let r = try Fixtures.run(["-c", fake.asOwnInstance(staged, "record", "-o '\(out)' -- true")],
                                 executable: "/bin/sh")
        #expect(r.status == 0, "\(r.stderr)")
        let written = try TraceDatV6Sections(path: out)
        #expect(written.metadata.pageSize == 8192)
        #expect(written.pages == big)
        #expect(written.metadata.headerPage == Array(ownHeader.utf8))
        let events = try Fixtures.events(path: out), recorded = try Fixtures.events(path: v6)
        #expect(events.count == recorded.count && events.count > 300)
        #expect(zip(events, recorded).allSatisfy { $0 == $1 })
        let report = { (path: String) throws -> [Substring] in
            let run = try Fixtures.run(["report", "-i", path], executable: "/usr/bin/trace-cmd")
            #expect(run.status == 0, "\(run.stderr)")
            return run.stdout.split(separator: "\n").filter { $0.contains(": dma_") }
        }
        let ours = try report(out)
        #expect(ours.count > 300)
        #expect(ours == (try report(v6)))
    }

    @Test func ringBufferStatsAreRead() {
        let s = RingBufferStats(parsing: "entries: 12\noverrun: 34\ncommit overrun: 0\nbytes: 1\noldest event ts:  5.000100\nnow ts:  6.500250\ndropped events: 7\nread events: 9\n")
        #expect(s.entries == 12 && s.overrun == 34 && s.droppedEvents == 7 && s.readEvents == 9)
        #expect(s.now == 6_500_250_000)
    }
}
