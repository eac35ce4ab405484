import Foundation
import Testing
@testable import DMATrace

/// `perf script` text (perf 6.1's layout; the lines below are copied from its output on the
/// lab's recordings, trimmed to the fields each test is about).
@Suite struct PerfScriptTests {
    static let unmapPayload = "0000:00:03.0 dir=FROM_DEVICE dma_addr=59ea000 size=4096 attrs="

    /// One line per `-F` variant; every one must give the same unmap on the same device.
    static let variants: [(fields: String, line: String, task: String, pid: Int32, cpu: Int32, ns: UInt64)] = [
        ("default", "         swapper     0 [001]    39.419901:             dma:dma_unmap_page: \(unmapPayload)", "swapper", 0, 1, 39_419_901_000),
        ("comm,pid,tid,cpu,time --ns", "         swapper     0/0     [001]    39.419901018:             dma:dma_unmap_page: \(unmapPayload)", "swapper", 0, 1, 39_419_901_018),
        ("tid,cpu,time --ns", "    0 [001]    39.419901018:             dma:dma_unmap_page: \(unmapPayload)", "", 0, 1, 39_419_901_018),
        ("comm,tid,time --ns", "     ksoftirqd/1    27    39.419901018:             dma:dma_unmap_page: \(unmapPayload)", "ksoftirqd/1", 27, 0, 39_419_901_018),
        ("comm,pid,cpu,time,period", "         swapper     0 [001]    39.419901018:          1             dma:dma_unmap_page: \(unmapPayload)", "swapper", 0, 1, 39_419_901_018),
        ("time", "   39.419901018:             dma:dma_unmap_page: \(unmapPayload)", "", -1, 0, 39_419_901_018),
        ("comm with a dash", " kworker/u8:0-ev    12 [000]    39.419901:             dma:dma_unmap_page: \(unmapPayload)", "kworker/u8:0-ev", 12, 0, 39_419_901_000),
        ("comm with a space", "     Web Content  4242 [000]    39.419901:             dma:dma_unmap_page: \(unmapPayload)", "Web Content", 4242, 0, 39_419_901_000),
        ("inline ip (-F ip,sym without -g)", " kworker/u8:0-ev    12/12    [000]    39.419901018:             dma:dma_unmap_page: \(unmapPayload) ffffffffb0d878dd __traceiter_dma_unmap_page+0x5d ([kernel.kallsyms])", "kworker/u8:0-ev", 12, 0, 39_419_901_018),
    ]

    @Test(arguments: 0..<variants.count)
    func everyFieldVariantGivesTheSameEvent(_ i: Int) throws {
        let v = Self.variants[i]
        let reader = try TextTraceReader(name: "perf.txt", text: v.line + "\n")
        var events: [DMAEvent] = []
        let stats = try reader.read { events.append($0) }
        #expect(reader.facts.format == .perfScript, "\(v.fields)")
        #expect(stats.unreadableLines == 0, "\(v.fields): \(stats.unreadableSamples.map(\.reason))")
        let e = try #require(events.first, "\(v.fields)")
        #expect(e.task == v.task && e.pid == v.pid && e.cpu == v.cpu && e.timestamp == v.ns, "\(v.fields): \(e.line)")
        #expect(e.device == "0000:00:03.0")
        guard case .unmap(let u) = e.kind else { Issue.record("\(v.fields): not an unmap: \(e.line)"); return }
        #expect(u.dmaAddr == 0x59ea000 && u.size == 4096 && u.direction == .fromDevice && u.attrs.isEmpty, "\(v.fields)")
    }

    @Test func failedToParseArraysAsPerfPrintsThem() throws {
        let text = """
                kthreadd   282 [001]    42.372749:                 dma:dma_map_sg: [FAILED TO PARSE] device=0000:00:1f.2 full_nents=1 full_ents=1 truncated=0 phys_addrs=ARRAY[c0, 68, dc, 04, 00, 00, 00, 00] dma_addrs=ARRAY[c0, 68, dc, 04, 00, 00, 00, 00] lengths=ARRAY[00, 02, 00, 00] dir=2 attrs=0x0
                kthreadd   284 [000]    42.429091:               dma:dma_unmap_sg: [FAILED TO PARSE] device=0000:00:1f.2 addrs=ARRAY[c0, 68, dc, 04, 00, 00, 00, 00] dir=2 attrs=0x0
        """
        let (events, _) = try Fixtures.events(text: text)
        guard events.count == 2, case .mapSG(let sg) = events[0].kind, case .unmapSG(let u) = events[1].kind else {
            Issue.record("wrong events \(events.map(\.line))")
            return
        }
        #expect(sg.physAddrs == [0x4dc68c0] && sg.lengths == [512] && u.physAddrs == [0x4dc68c0])
    }

    /// `-g`: the frames that follow a sample are its kernel stack; user frames are not kept.
    @Test func callchainsBecomeKernelStacksWithModules() throws {
        let text = """
         kworker/u8:2-ev    37 [000]    19.250081:               dma:dma_map_page: 0000:00:03.0 dir=FROM_DEVICE dma_addr=4e0b000 size=4096 phys_addr=4e0b000 attrs=
        \tffffffff819877ad __traceiter_dma_map_page+0x5d ([kernel.kallsyms])
        \tffffffff8198bc44 dma_map_page_attrs+0x1f4 ([kernel.kallsyms])
        \tffffffffc057f656 nvme_prep_rq.part.0+0x1a6 (/lib/modules/6.12.117+deb13-amd64/nvme.ko)
        \tffffffffc0582409 nvme_queue_rq+0x89 ([nvme])
        \tffffffffc0545b59 [unknown] ([unknown])
        \tffffffff81e3fca1 blk_mq_dispatch_rq_list+0x141 ([kernel.kallsyms])

                      dd   301 [001]    19.250099:             dma:dma_unmap_page: 0000:00:03.0 dir=FROM_DEVICE dma_addr=4e0b000 size=4096 attrs=
        \tffffffff819878dd __traceiter_dma_unmap_page+0x5d ([kernel.kallsyms])
        \tffffffffc0570d1e nvme_pci_complete_rq+0x7e (/lib/modules/6.12.117+deb13-amd64/kernel/drivers/nvme/host/nvme-core.ko.xz)
        \t          4a1b2c libc_write+0x1c (/usr/lib/x86_64-linux-gnu/libc.so.6)
        \t          401000 main+0x10 (/bin/busybox)

        """
        let (events, stats) = try Fixtures.events(text: text)
        #expect(stats.unreadableLines == 0, "\(stats.unreadableSamples.map { "\($0.line): \($0.reason)" })")
        #expect(events.count == 2)
        #expect(events.first?.stack?.frames == [
            "__traceiter_dma_map_page+0x5d", "dma_map_page_attrs+0x1f4", "nvme_prep_rq.part.0+0x1a6 [nvme]",
            "nvme_queue_rq+0x89 [nvme]", "0xffffffffc0545b59", "blk_mq_dispatch_rq_list+0x141",
        ])
        #expect(events.last?.stack?.frames == ["__traceiter_dma_unmap_page+0x5d", "nvme_pci_complete_rq+0x7e [nvme_core]"])
        // The driver's call site skips the DMA API and tracing frames.
        #expect(RuleContext.callSite(events.first?.stack) == "nvme_prep_rq.part.0")
    }

    @Test func lostAndThrottleRecordsAreGaps() throws {
        let text = """
                 swapper     0 [001]    10.000000:             dma:dma_unmap_page: \(Self.unmapPayload)
                    perf   100 [001]    10.500000: PERF_RECORD_LOST lost 23
                 swapper     0 [001]    11.000000:             dma:dma_unmap_page: \(Self.unmapPayload)
        LOST 7 events!
                 swapper     0 [000]    12.000000:             dma:dma_unmap_page: \(Self.unmapPayload)
                 swapper     0 [000]    12.500000: PERF_RECORD_THROTTLE
                 swapper     0 [000]    12.600000: PERF_RECORD_UNTHROTTLE
                 swapper     0 [000]    13.000000:             dma:dma_unmap_page: \(Self.unmapPayload)
        """
        let (events, stats) = try Fixtures.events(text: text)
        let gaps = events.compactMap { e -> (cpu: Int32, count: UInt64?, at: UInt64)? in
            if case .lostEvents(let c) = e.kind { return (e.cpu, c, e.timestamp) }
            return nil
        }
        #expect(gaps.count == 3, "\(events.map(\.line))")
        #expect(gaps.contains { $0.cpu == 1 && $0.count == 23 && $0.at == 11_000_000_000 })
        #expect(gaps.contains { $0.cpu == -1 && $0.count == 7 && $0.at == 12_000_000_000 })
        #expect(gaps.contains { $0.cpu == 0 && $0.count == nil && $0.at == 13_000_000_000 })
        #expect(stats.lostEventsCounted == 30 && stats.uncountedGaps == 1)
    }

    @Test func kernelLogLinesAreMarkersAndOtherEventsAreSkipped() throws {
        let text = """
                    init   244 [001]    36.945799:                 printk:console: FI: begin double-unmap
                    init   244 [001]    36.945800:            sched:sched_switch: prev_comm=init prev_pid=244 prev_prio=120
                    init   244 [001]    36.946000:          1    cycles:  ffffffff81000000 do_idle+0x10 ([kernel.kallsyms])
                 swapper     0 [001]    36.950000:             dma:dma_unmap_page: \(Self.unmapPayload)
        """
        let (events, stats) = try Fixtures.events(text: text)
        #expect(events.count == 2)
        #expect(events.first?.kind == .marker("FI: begin double-unmap"))
        #expect(stats.otherRecords == 1 && stats.unreadableLines == 0, "\(stats.unreadableSamples.map(\.reason))")
    }

    @Test func unreadableLinesAreCountedWithTheirNumbers() throws {
        let text = """
                 swapper     0 [001]    39.419901:             dma:dma_unmap_page: \(Self.unmapPayload)
        this is not perf output
                 swapper     0 [001]    39.41990x:             dma:dma_unmap_page: \(Self.unmapPayload)
                 swapper     0 [001]    39.419950:             dma:dma_unmap_page: 0000:00:03.0 dir=FROM_DEVICE size=4096
        """
        let reader = try TextTraceReader(name: "perf.txt", text: text, options: .init(keepUnreadable: 10))
        var n = 0
        let stats = try reader.read { _ in n += 1 }
        #expect(n == 1)
        #expect(stats.unreadableLines == 3)
        #expect(stats.unreadableSamples.map(\.line) == [2, 3, 4])
    }

    @Test func headerGivesReleaseCPUsAndFormats() throws {
        let text = """
        # ========
        # os release : 6.12.117+deb13-amd64
        # nrcpus avail : 2
        # event : name = dma:dma_alloc_pages, , id = { 36, 37 }, type = 2, size = 128
        # ========
        #
                 swapper     0 [001]    39.419901:             dma:dma_unmap_page: \(Self.unmapPayload)
        """
        let reader = try TextTraceReader(name: "perf.txt", text: text)
        _ = try reader.read { _ in }
        #expect(reader.facts.kernelRelease == "6.12.117+deb13-amd64" && reader.facts.cpus == 2)
        #expect(reader.facts.generation == .v6_13)
    }

    @Test func aLongHeaderStillMakesItPerf() throws {
        _ = try #require(PerfDataReader.perfExecutable(), "perf is needed (apt-get install linux-perf)")
        let data = PerfRecordingTests.file("io-6.12-plain", ".perf.data")
        let run = try Fixtures.run(["script", "--header", "-i", data], executable: PerfDataReader.perfExecutable())
        #expect(run.status == 0)
        let dir = try Fixtures.scratch()
        let path = dir.appendingPathComponent("with-header.txt").path
        try run.stdout.write(toFile: path, atomically: true, encoding: .utf8)
        let source = try TraceOpener.open(path: path)
        var n = 0
        let stats = try source.read { if $0.device != nil { n += 1 } }
        #expect(source.facts.format == .perfScript && source.facts.kernelRelease?.hasPrefix("6.12") == true)
        #expect(n > 100 && stats.unreadableLines == 0)
    }

    @Test func ftraceTextIsNotTakenForPerf() throws {
        for line in [
            "          <idle>-0       [000] d.h1.    12.100914: dma_unmap_phys: 0000:00:03.0 dir=TO_DEVICE dma_addr=1029d1000 size=4096 attrs=",
            "            init-123     [000] ...1.     3.521378: tracing_mark_write: LAB: phase a:b:",
        ] {
            #expect(!PerfScriptLineParser.looksLikePerfScript(line), "\(line)")
        }
    }
}
