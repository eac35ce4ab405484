import Foundation
import Testing
@testable import DMATrace

/// The model's domains on their own: platform facts, sg entry lengths, the recent past,
/// and what a trace without dma events can say.
@Suite struct PlatformFactsTests {
    static func line(_ t: String, _ event: String, _ payload: String, task: String = "kworker/u8:1-29") -> String {
        "\(task.padding(toLength: 20, withPad: " ", startingAt: 0)) [000] \(t): \(event): \(payload)"
    }

    @Test func architectureFromReleaseAndAddresses() {
        #expect(ArchitectureFact.fromRelease("6.12.117+deb13-amd64")?.arch == .x86_64)
        #expect(ArchitectureFact.fromRelease("7.3.4+deb13-arm64")?.arch == .arm64)
        #expect(ArchitectureFact.fromRelease("6.12.117+deb13-amd64")?.confidence == .proven)
        #expect(ArchitectureFact.fromRelease(nil) == nil)
        #expect(ArchitectureFact.fromKernelAddress(0xFFFF_0000_4810_0000)?.arch == .arm64)
        #expect(ArchitectureFact.fromKernelAddress(0xFF28_53B2_43F3_5000)?.arch == .x86_64)
        #expect(ArchitectureFact.fromKernelAddress(0xFFFF_8880_0010_0000)?.confidence == .weak)
    }

    @Test func busOffsetNeedsTwoAgreeingSegments() {
        var t = AddressTranslation()
        t.note(dma: 0xC300_0000, phys: 0x0300_0000)
        #expect(t.busOffset == nil)
        t.note(dma: 0xC300_1000, phys: 0x0300_1000)
        #expect(t.busOffset == 0xC000_0000)
        t.note(dma: 0xFFFF_E000, phys: 0x1_0600_0000)
        #expect(t.busOffset == nil, "IOVAs handed out top-down disagree")
    }

    /// iommu-dma merges only at page boundaries: the last entry of a merged segment takes the
    /// rest of the segment and need not reach the end of its page.
    @Test func mergedEntryLengths() {
        let r = DMAModel.entryRanges(segments: [4096 + 4096 + 1024], entries: [0x1000, 0x5000, 0x2000])
        #expect(r.map(\.length) == [4096, 4096, 1024])
        let offset = DMAModel.entryRanges(segments: [0x800 + 4096], entries: [0x1800, 0x9000])
        #expect(offset.map(\.length) == [0x800, 4096])
        let capped = DMAModel.entryRanges(segments: [8192], entries: [0x1000, 0x2000, 0x7000])
        #expect(capped.map(\.length) == [4096, 4096, 4096], "entries past the known segments are taken to their page's end")
        let multiPage = DMAModel.entryRanges(segments: [8192 + 4096], entries: [0x10000, 0x20000])
        #expect(multiPage.map(\.length) == [4096, 4096], "no entry is stretched past its page: that could invent an overlap")
    }

    @Test func tombstonesAreExactAndBounded() {
        let memory = TombstoneMemory()
        func stone(_ at: UInt64) -> Tombstone {
            Tombstone(reason: .unmapped, event: DMAEvent(timestamp: at, cpu: 0, pid: 1, task: "t", device: "d", kind: .marker("")),
                      original: nil, sequence: 0)
        }
        memory.set(0x1000, stone(1))
        for i in 0..<5000 { memory.set(0x10_0000 + UInt64(i) * 64, stone(2)) }
        #expect(memory.get(0x1000) != nil, "no other address can push a record out before the count bound")
        for i in 0..<TombstoneMemory.limit { memory.set(0x100_0000 + UInt64(i) * 64, stone(3)) }
        #expect(memory.get(0x1000) == nil && memory.forgotAny)
        let timed = TombstoneMemory()
        timed.set(0x2000, stone(1))
        timed.set(0x3000, stone(1 + TombstoneMemory.window + 1))
        #expect(timed.get(0x2000) == nil && timed.get(0x3000) != nil)
    }

    /// The ring behind the tombstones against the plainest reading of their contract: the
    /// newest `limit` releases within `window` of the newest, an address's latest only, a failed
    /// map kept when the address is mapped again.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func tombstonesAgreeWithAList(seed: UInt64) {
        var rng = SplitMix(seed: seed)
        let memory = TombstoneMemory()
        // Every release in order (the oldest kept at `oldest`), and each address's latest live one.
        var releases: [(key: UInt64, at: UInt64, reason: Tombstone.Reason, live: Bool)] = []
        var oldest = 0
        var latest: [UInt64: Int] = [:]
        var forgot = false
        var fullAt = 0
        var now: UInt64 = 1
        for _ in 0..<60_000 {
            // Few addresses, so they are released again and mapped again; the count bound is reached
            // between rare long pauses.
            let key = (rng.next() % 24_000) << 12
            now += rng.next() % 20_000 == 0 ? TombstoneMemory.window / 2 : rng.next() % 1000
            switch rng.next() % 4 {
            case 0, 1:
                let reason: Tombstone.Reason = rng.next() % 10 == 0 ? .mapFailed : .unmapped
                memory.set(key, Tombstone(reason: reason, event: DMAEvent(timestamp: now, cpu: 0, pid: 1, task: "t",
                                                                        device: "d", kind: .marker("")), original: nil, sequence: 0))
                if let i = latest[key] { releases[i].live = false }
                releases.append((key, now, reason, true))
                latest[key] = releases.count - 1
                while releases.count - oldest > TombstoneMemory.limit
                        || (now > releases[oldest].at && now - releases[oldest].at > TombstoneMemory.window) {
                    if releases[oldest].live {
                        forgot = true
                        latest[releases[oldest].key] = nil
                    }
                    oldest += 1
                }
                if releases.count - oldest == TombstoneMemory.limit { fullAt += 1 }
            case 2:
                memory.removeUnmapped(key)
                if let i = latest[key], releases[i].reason == .unmapped {
                    releases[i].live = false
                    latest[key] = nil
                }
            default:
                let expected = latest[key].map { releases[$0] }
                let got = memory.get(key)
                #expect(got?.event.timestamp == expected?.at && got?.reason == expected?.reason)
            }
            #expect(memory.count == latest.count)
            #expect(memory.forgotAny == forgot)
        }
        #expect(fullAt > 1000, "the count bound, not only the window, was exercised")
    }

    /// A 32-bit device on x86: its bounces clear dma_skip_sync, so its syncs are traced, but the
    /// architecture is coherent; on arm64 syncs of unbounced mappings before any bounce mean non-coherent.
    @Test func coherenceIsEvidence() throws {
        let dev = "0000:00:05.0"
        let x86 = [
            Self.line("1.0", "dma_alloc", "\(dev) dir=BIDIRECTIONAL dma_addr=f0000 size=4096 virt_addr=0xff2853b2000f0000 flags=GFP_KERNEL attrs="),
            Self.line("1.1", "swiotlb_bounced", "dev_name: \(dev) dma_mask=ffffffff dev_addr=103000000 size=4096 NORMAL"),
            Self.line("1.2", "dma_map_phys", "\(dev) dir=FROM_DEVICE dma_addr=7b000000 size=4096 phys_addr=103000000 attrs="),
            Self.line("1.3", "dma_map_phys", "\(dev) dir=FROM_DEVICE dma_addr=104000000 size=64 phys_addr=104000000 attrs="),
            Self.line("1.4", "dma_sync_single_for_cpu", "\(dev) dir=FROM_DEVICE dma_addr=104000000 size=64"),
        ]
        let r = try Fixtures.analyze(text: "cpus=2\n" + x86.joined(separator: "\n") + "\n")
        let p = try #require(r.devices.first)
        #expect(p.architecture?.arch == .x86_64)
        #expect(p.coherence == .coherentByArchitecture)
        #expect(p.coherenceFact.confidence == .strong && p.coherenceFact.evidence.contains("swiotlb"))

        let arm = [
            Self.line("1.0", "dma_alloc", "\(dev) dir=BIDIRECTIONAL dma_addr=48000000 size=4096 virt_addr=0xffff000008000000 flags=GFP_KERNEL attrs="),
            Self.line("1.1", "dma_map_phys", "\(dev) dir=FROM_DEVICE dma_addr=48100000 size=4096 phys_addr=48100000 attrs="),
            Self.line("1.2", "dma_sync_single_for_cpu", "\(dev) dir=FROM_DEVICE dma_addr=48100000 size=4096"),
        ]
        let a = try #require(try Fixtures.analyze(text: "cpus=2\n" + arm.joined(separator: "\n") + "\n").devices.first)
        #expect(a.architecture?.arch == .arm64)
        #expect(a.coherence == .nonCoherent && a.coherenceFact.confidence == .strong)
    }

    @Test func factsAreInTheJSONAndTheText() throws {
        let path = Fixtures.root.appendingPathComponent("Tests/Corpus/legal/bus-offset-readers-7.txt").path
        let r = try Analyzer.analyze(path: path)
        let doc = AnalysisDocument(r, findings: r.findings)
        let json = String(decoding: try JSONEncoder().encode(doc), as: UTF8.self)
        #expect(json.contains("\"facts\""), "device facts in the JSON")
        let p = try #require(r.devices.first)
        #expect(p.path == .busOffset && p.busOffset == 0xC000_0000)
        #expect(p.pathFact.evidence.contains("0xc0000000"))
        let text = TextReport(color: false).render(r, findings: r.findings)
        #expect(text.contains("fact: dma path dma-direct with bus offset (strong:"))
        let html = ReportPage(document: doc)
        #expect(html.devices.first?.limitations.contains { $0.hasPrefix("dma path: dma-direct with bus offset (strong:") } == true)
    }

    /// A 6.1 kernel: swiotlb and iommu events only. Said up front, no per-device nonsense.
    @Test func kernelsWithoutDMAEventsSaySo() throws {
        var facts = TraceFacts(path: "x.dat", format: .traceDat)
        facts.kernelRelease = "6.1.0-28-amd64"
        #expect(facts.dmaEventsNotice?.contains("Kernel 6.1.0-28-amd64 has no dma events") == true)
        #expect(facts.dmaEventsNotice?.contains("arrived in Linux 6.12") == true)
        facts.kernelRelease = "6.12.117+deb13-amd64"
        facts.generation = .v6_13
        #expect(facts.dmaEventsNotice == nil)

        let path = Fixtures.root.appendingPathComponent("Tests/Corpus/legal/pre-6.12-swiotlb-iommu-only.txt").path
        let r = try Analyzer.analyze(path: path)
        #expect(r.notices.count == 1 && r.notices[0].contains("6.12"))
        #expect(r.iommuBalance?.maps == 3 && r.iommuBalance?.unmaps == 3 && r.iommuBalance?.stillMapped == 0)
        let text = TextReport(color: false).render(r, findings: r.findings)
        #expect(text.contains("no dma events") && !text.contains("maps 0") && !text.contains("active before the trace began"))
        let page = ReportPage(document: AnalysisDocument(r, findings: r.findings))
        #expect(page.facts.contains { $0.label == "Note" && $0.value.contains("arrived in Linux 6.12") })
        #expect(page.facts.contains { $0.label == "IOMMU map/unmap" && $0.value.hasPrefix("3 / 3") })
        let info = try Fixtures.run(["info", path])
        #expect(info.status == 0 && info.stdout.contains("arrived in Linux 6.12"))
    }
}
