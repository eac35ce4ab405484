import Foundation
import Testing
@testable import DMATrace

@Suite struct TextIngestTests {
    static let tracefs = """
    # tracer: nop
    #
    # entries-in-buffer/entries-written: 4/4   #P:4
    #
    #                                _-----=> irqs-off/BH-disabled
    #                               / _----=> need-resched
    #                              | / _---=> hardirq/softirq
    #                              || / _--=> preempt-depth
    #                              ||| / _-=> migrate-disable
    #                              |||| /     delay
    #           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
    #              | |         |   |||||     |         |
         kworker/u8:1-31      [001] d..1.     7.797733: dma_map_page: 0000:00:03.0 dir=FROM_DEVICE dma_addr=ffffd000 size=4096 phys_addr=103ab1000 attrs=
     irq/24-my dev-99         [000] ..s1.     7.797800: dma_alloc: 0000:00:03.0 dir=BIDIRECTIONAL dma_addr=1058d4000 size=512 virt_addr=000000003e5c0e4f flags=GFP_KERNEL attrs=
              <idle>-0       [000] d.h2.     7.799457: dma_unmap_page: 0000:00:03.0 dir=FROM_DEVICE dma_addr=ffffd000 size=4096 attrs=SKIP_CPU_SYNC
              <idle>-0       [000] d.h2.     7.799500: dma_map_sg: 0000:00:1f.2 dir=TO_DEVICE nents=2/2 ents=1/1 dma_addrs={0x7b0d2000} sizes={8192} phys_addrs={0x10329a000,0x10329b000} attrs=
    """

    @Test func tracefsTextWithHeaderFlagsAndOddTaskNames() throws {
        let (events, stats) = try Fixtures.events(text: Self.tracefs)
        #expect(events.count == 4)
        #expect(stats.unreadableLines == 0)
        #expect(events[0].task == "kworker/u8:1" && events[0].pid == 31 && events[0].cpu == 1)
        #expect(events[0].timestamp == 7_797_733_000)
        #expect(events[1].task == "irq/24-my dev" && events[1].pid == 99)
        guard case .alloc(let a) = events[1].kind else { Issue.record("not an alloc"); return }
        #expect({ if case .hashed(_?) = a.cpuAddr { return true }; return false }(), "a hashed %p must not pass for an address")
        guard case .unmap(let u) = events[2].kind else { Issue.record("not an unmap"); return }
        #expect(u.attrs == .skipCPUSync && u.direction == .fromDevice)
        guard case .mapSG(let sg) = events[3].kind else { Issue.record("not map_sg"); return }
        #expect(sg.inputEntries == 2 && sg.mappedEntries == 1 && sg.physAddrs == [0x10329a000, 0x10329b000] && sg.lengths == [8192])
    }

    @Test func tracefsHeaderGivesCPUCount() throws {
        let reader = try TextTraceReader(name: "t", text: Self.tracefs)
        _ = try reader.read { _ in }
        #expect(reader.facts.cpus == 4)
        #expect(reader.facts.format == .tracefs)
    }

    @Test func traceCmdRawArraysOfFailedToParseRecords() throws {
        let text = """
        cpus=2
               scsi_eh_0-253   [000]     8.525966: dma_map_sg:           [FAILED TO PARSE] device=0000:00:1f.2 full_nents=1 full_ents=1 truncated=0 phys_addrs=ARRAY[c0, 68, 50, 03, 01, 00, 00, 00] dma_addrs=ARRAY[c0, f8, f3, ff, 00, 00, 00, 00] lengths=ARRAY[00, 02, 00, 00] dir=2 attrs=0x0
                  <idle>-0     [001]     8.527315: dma_unmap_sg:         [FAILED TO PARSE] device=0000:00:1f.2 addrs=ARRAY[c0, 68, 50, 03, 01, 00, 00, 00] dir=2 attrs=0x0
        """
        let (events, _) = try Fixtures.events(text: text)
        guard case .mapSG(let sg) = events[0].kind, case .unmapSG(let u) = events[1].kind else {
            Issue.record("wrong kinds \(events.map(\.kind.name))")
            return
        }
        #expect(sg.physAddrs == [0x1_0350_68c0] && sg.dmaAddrs == [0xfff3_f8c0] && sg.lengths == [512] && sg.direction == .fromDevice)
        #expect(u.physAddrs == [0x1_0350_68c0])
        #expect(events[0].device == "0000:00:1f.2")
    }

    /// libtraceevent's raw form prints unsigned non-long fields with %llu
    /// (tep_print_field_content), so dma_alloc_sgt's dma_addr arrives in decimal. Read as
    /// hex, the allocation landed elsewhere and its legal sg sync became sync-unknown.
    @Test func rawFormNumbersAreDecimalUnlessPrefixed() throws {
        let text = """
        cpus=2
        v4l2-capture-610   [001]    34.411925: dma_alloc_sgt:        [FAILED TO PARSE] device=vivid.0 phys_addrs=ARRAY[00, 00, 94, b9, 00, 00, 00, 00] dma_addr=3113484288 size=233472 dir=2 flags=3264 attrs=0x0
        v4l2-capture-610   [000]    34.437513: dma_sync_sg_for_device: [FAILED TO PARSE] device=vivid.0 dma_addrs=ARRAY[00, 00, 94, b9, 00, 00, 00, 00] lengths=ARRAY[00, 90, 03, 00] dir=2
        """
        let (events, _) = try Fixtures.events(text: text)
        guard case .alloc(let a) = events[0].kind else { Issue.record("not an alloc: \(events[0].kind.name)"); return }
        #expect(a.dmaAddr == 0xb994_0000 && a.size == 233_472)
        let result = try Fixtures.analyze(text: text)
        #expect(result.findings.filter { $0.severity >= .warning }.isEmpty, "\(result.findings.map(\.rule))")
    }

    @Test func lostEventLinesInAllThreeSpellings() throws {
        let text = """
        cpus=2
        CPU:1 [LOST 42 EVENTS]
                  <idle>-0     [001]     1.000000: dma_unmap_page: 0000:00:03.0 dir=FROM_DEVICE dma_addr=1000 size=4096 attrs=
        CPU:0 [17 EVENTS DROPPED]
                  <idle>-0     [000]     2.000000: dma_unmap_page: 0000:00:03.0 dir=FROM_DEVICE dma_addr=2000 size=4096 attrs=
        CPU:0 [EVENTS DROPPED]
                  <idle>-0     [000]     3.000000: dma_unmap_page: 0000:00:03.0 dir=FROM_DEVICE dma_addr=3000 size=4096 attrs=
        """
        let (events, stats) = try Fixtures.events(text: text)
        let lost = events.compactMap { e -> (Int32, UInt64?, UInt64)? in
            if case .lostEvents(let c) = e.kind { return (e.cpu, c, e.timestamp) }
            return nil
        }
        #expect(lost.count == 3)
        #expect(lost[0] == (1, 42, 1_000_000_000))
        #expect(lost[1] == (0, 17, 2_000_000_000))
        #expect(lost[2].0 == 0 && lost[2].1 == nil)
        #expect(stats.lostGaps == 3 && stats.uncountedGaps == 1 && stats.lostEventsCounted == 59)
    }

    @Test func stackBlocksAttachToTheirEvent() throws {
        let tracefsStack = """
                  dd-300     [001] .....   8.500000: dma_map_page: 0000:00:03.0 dir=TO_DEVICE dma_addr=5000 size=4096 phys_addr=5000 attrs=
                  dd-300     [001] .....   8.500001: <stack trace>
         => dma_map_page_attrs+0x1a4/0x2c0
         => nvme_prep_rq+0x2f1/0x8a0 [nvme]
         => nvme_queue_rq+0x7c/0x1e0 [nvme]
        """
        let (a, _) = try Fixtures.events(text: tracefsStack)
        #expect(a.count == 1)
        #expect(a[0].stack?.frames == ["dma_map_page_attrs+0x1a4", "nvme_prep_rq+0x2f1", "nvme_queue_rq+0x7c"])

        let report = """
        cpus=2
                  dd-300   [001]     8.500000: dma_map_page:         0000:00:03.0 dir=TO_DEVICE dma_addr=5000 size=4096 phys_addr=5000 attrs=
                  dd-300   [001]     8.500001: kernel_stack:         <stack trace >
        => dma_map_page_attrs (ffffffff8a1b2c34)
        => nvme_prep_rq (ffffffffc0a01234)
        """
        let (b, _) = try Fixtures.events(text: report)
        #expect(b.count == 1)
        #expect(b[0].stack?.frames == ["dma_map_page_attrs", "nvme_prep_rq"])
    }

    @Test func unreadableLinesAreCountedNotFatal() throws {
        let text = """
        cpus=2
        this is not a trace line
                  <idle>-0     [001]     1.000000: dma_unmap_page: 0000:00:03.0 dir=FROM_DEVICE dma_addr=1000 size=4096 attrs=
                  <idle>-0     [001]     1.000001: dma_unmap_page: 0000:00:03.0 dir=FROM_DEVICE size=4096 attrs=
        """
        let reader = try TextTraceReader(name: "t", text: text, options: .init(keepUnreadable: 10))
        var n = 0
        let stats = try reader.read { _ in n += 1 }
        #expect(n == 1)
        #expect(stats.unreadableLines == 2)
        #expect(stats.unreadableSamples.map(\.line) == [2, 4])
    }

    @Test func markersPassThrough() throws {
        let text = """
        cpus=2
                    init-1     [001]     7.590664: print:                tracing_mark_write: LAB: trace start
        """
        let (events, _) = try Fixtures.events(text: text)
        #expect(events.first?.kind == .marker("LAB: trace start"))
    }

    @Test func iommuMapRequiresItsPayload() throws {
        let text = """
        cpus=2
            kworker/u8:1-31    [001]     7.793010: map:                  IOMMU: iova=0x00000000fffff000 - 0x0000000100000000 paddr=0x0000000106339000 size=4096
            kworker/u8:1-31    [001]     7.793011: map:                  something else entirely
        """
        let (events, stats) = try Fixtures.events(text: text)
        #expect(events.count == 1)
        #expect(events[0].kind == .iommuMap(IOMMUMapEvent(iova: 0xfffff000, physAddr: 0x106339000, size: 4096)))
        #expect(stats.otherRecords == 1)
    }
}
