import Foundation
import Testing
@testable import DMATrace

/// The real recordings: clean drivers must stay clean, and the model must
/// agree with the counts the recordings' MANIFEST gives (made by other tools).
@Suite struct RealTraceTests {
    @Test(arguments: Fixtures.realTraces)
    func cleanDriversGiveNothingAtWarningOrAbove(_ name: String) throws {
        let result = try Analyzer.analyze(path: Fixtures.sample(name))
        let loud = result.findings.filter { $0.severity >= .warning }
        #expect(loud.isEmpty, "\(name): \(loud.map { "\($0.rule): \($0.message)" })")
        #expect(result.lostGaps.isEmpty)
        #expect(result.stats.malformedRecords == 0)
    }

    struct Golden: Sendable, CustomTestStringConvertible {
        var trace: String
        var kernel: String
        var generation: EventGeneration
        /// device -> (path, maps, sg maps, unmaps, coherent allocs, live mappings at the end)
        var devices: [String: (DeviceProfile.Path, UInt64, UInt64, UInt64, UInt64, Int)]
        var testDescription: String { trace }
    }

    static let goldens: [Golden] = [
        Golden(trace: "k6.12-nvme-e1000e-ahci-xhci.dat", kernel: "6.12.117+deb13-amd64", generation: .v6_13, devices: [
            "0000:00:03.0": (.direct, 2199 + 206, 206, 2199 + 206, 11, 0),
            "0000:00:04.0": (.direct, 1672 + 23, 1672, 1672 + 23, 14, 0),
            "0000:00:05.0": (.direct, 525, 0, 270, 2, 255),
            "0000:00:1f.2": (.direct, 1240, 1240, 1240, 6, 0),
        ]),
        Golden(trace: "k6.12-iommu.dat", kernel: "6.12.117+deb13-amd64", generation: .v6_13, devices: [
            "0000:00:03.0": (.iommu, 2522 + 371, 371, 2522 + 371, 9, 0),
            "0000:00:04.0": (.iommu, 1672 + 23, 1672, 1672 + 23, 14, 0),
            "0000:00:05.0": (.iommu, 525, 0, 270, 2, 255),
            "0000:00:1f.2": (.iommu, 5775, 5775, 5775, 6, 0),
        ]),
        Golden(trace: "k6.12-swiotlb.dat", kernel: "6.12.117+deb13-amd64", generation: .v6_13, devices: [
            "0000:00:03.0": (.bounce, 2337 + 266, 266, 2337 + 266, 13, 0),
            "0000:00:04.0": (.bounce, 1708 + 23, 1708, 1708 + 23, 14, 0),
            "0000:00:05.0": (.bounce, 525, 0, 270, 2, 255),
            "0000:00:1f.2": (.bounce, 1392, 1392, 1392, 6, 0),
        ]),
        // 7.x NVMe on dma-direct skips most unmaps by design (dma_need_unmap() is false).
        Golden(trace: "k7.3-nvme-e1000e-ahci-xhci.dat", kernel: "7.3.4+deb13-amd64", generation: .v6_18, devices: [
            "0000:00:03.0": (.direct, 8488, 0, 2210, 11, 167),
            "0000:00:04.0": (.direct, 1490 + 23, 1490, 1490 + 23, 14, 0),
            "0000:00:05.0": (.direct, 525, 0, 270, 2, 255),
            "0000:00:1f.2": (.direct, 1173, 1173, 1173, 6, 0),
        ]),
    ]

    @Test(arguments: goldens)
    func summaryMatchesTheRecording(_ golden: Golden) throws {
        let result = try Analyzer.analyze(path: Fixtures.sample(golden.trace))
        #expect(result.facts.kernelRelease == golden.kernel)
        #expect(result.facts.generation == golden.generation)
        #expect(result.facts.cpus == 2)
        #expect(Set(result.devices.map(\.name)) == Set(golden.devices.keys))
        for d in result.devices {
            let g = try #require(golden.devices[d.name])
            #expect(d.path == g.0, "\(d.name) path")
            #expect(d.maps == g.1, "\(d.name) maps")
            #expect(d.sgMaps == g.2, "\(d.name) sg maps")
            #expect(d.unmaps == g.3, "\(d.name) unmaps")
            #expect(d.allocs == g.4, "\(d.name) allocs")
            #expect(d.liveMappings == g.5, "\(d.name) live at end")
        }
    }

    @Test func e1000eReceiveRingIsOutstandingNotLeaked() throws {
        let result = try Analyzer.analyze(path: Fixtures.sample("k6.12-nvme-e1000e-ahci-xhci.dat"))
        let leak = try #require(result.findings.first { $0.rule == "mapping-leak" && $0.device == "0000:00:05.0" })
        #expect(leak.severity == .note)
        #expect(leak.occurrences == 255)
    }

    @Test func nvmeOn7xSkipsUnmapsByDesignAndSaysSo() throws {
        let result = try Analyzer.analyze(path: Fixtures.sample("k7.3-nvme-e1000e-ahci-xhci.dat"))
        let nvme = try #require(result.devices.first { $0.name == "0000:00:03.0" })
        #expect(nvme.mayskipUnmaps)
        let notes = result.findings.filter { $0.rule == "mapping-leak" && $0.device == "0000:00:03.0" }
        #expect(!notes.isEmpty && notes.allSatisfy { $0.severity == .note && $0.message.contains("dma_need_unmap") })
        #expect(result.findings.filter { $0.rule == "double-mapping" }.isEmpty)
    }

    @Test func fingerprintsAreStableAcrossRuns() throws {
        let a = try Analyzer.analyze(path: Fixtures.sample("k7.3-nvme-e1000e-ahci-xhci.dat")).findings.map(\.fingerprint)
        let b = try Analyzer.analyze(path: Fixtures.sample("k7.3-nvme-e1000e-ahci-xhci.dat")).findings.map(\.fingerprint)
        #expect(a == b)
        #expect(!a.isEmpty)
    }

    @Test func kernelStacksAttachAndNameTheDriver() throws {
        let events = try Fixtures.events(path: Fixtures.sample("k6.12-stacks.dat"))
        let dma = events.filter { $0.device != nil }
        #expect(dma.count == 524 - 0 || dma.count > 400)
        #expect(dma.allSatisfy { $0.stack != nil }, "every DMA event of a -T recording has its stack")
        let result = try Analyzer.analyze(path: Fixtures.sample("k6.12-stacks.dat"))
        let nvme = try #require(result.findings.first { $0.device == "0000:00:03.0" && $0.rule == "coherent-leak" })
        #expect(nvme.callSite == "nvme_alloc_queue")
        #expect(nvme.stack?.frames.first?.hasPrefix("trace_event_raw_event_dma") == true)
        #expect(!result.findings.contains { $0.severity >= .warning })
    }

    @Test func lossyRecordingSaysSoAndBlamesNoDriver() throws {
        let result = try Analyzer.analyze(path: Fixtures.sample("k6.12-lossy.dat"))
        #expect(result.lostGaps.count == 46)
        #expect(result.lostGaps.compactMap(\.count).reduce(0, +) == 6171)
        let loud = result.findings.filter { $0.severity >= .warning }
        #expect(loud.map(\.rule) == ["events-lost"], "\(loud.map { "\($0.rule): \($0.message)" })")
        #expect(result.findings.contains { $0.caveats.contains { $0.contains("lost") } })
    }

    @Test(arguments: ["k7.3-tracefs.txt", "k7.3-trace_pipe.txt"])
    func kernelTextRecordings(_ name: String) throws {
        let result = try Analyzer.analyze(path: Fixtures.sample(name))
        #expect(result.facts.format == .tracefs)
        #expect(result.stats.unreadableLines == 0)
        #expect(result.stats.dmaEvents > 50)
        #expect(!result.findings.contains { $0.severity >= .warning })
        if name == "k7.3-tracefs.txt" { #expect(result.facts.cpus == 2) }
    }

    /// arm64 guests, coherent and with the PCIe host's dma-coherent removed, real drivers.
    /// e1000e (packet split, MTU 9000) leaks two receive pages at ifdown: a real driver bug
    /// (e1000_clean_rx_ring() stops at the first NULL page of a descriptor), and the only
    /// finding above a note.
    @Test(arguments: ["arm64-6.12-coherent.dat", "arm64-6.12-noncoherent.dat", "arm64-7.3-noncoherent.dat"])
    func arm64RealDrivers(_ name: String) throws {
        let result = try Analyzer.analyze(path: Fixtures.samples.appendingPathComponent("arm64/" + name).path)
        let loud = result.findings.filter { $0.severity >= .warning }
        #expect(loud.count == 1, "\(loud.map { "\($0.device) \($0.rule): \($0.message)" })")
        let leak = try #require(loud.first)
        #expect(leak.rule == "mapping-leak" && leak.device == "0000:00:03.0" && leak.occurrences == 2)
        #expect(leak.message.contains("released the device"))
        let e1000e = try #require(result.devices.first { $0.name == "0000:00:03.0" })
        if name.contains("noncoherent") {
            #expect(e1000e.syncsForCPU > 0 && e1000e.syncsForDevice > 0)
            #expect(e1000e.coherence == .nonCoherent)
        } else {
            #expect(e1000e.syncsForCPU + e1000e.syncsForDevice == 0)
        }
        if name.hasPrefix("arm64-7.3") {
            // virtio-net's page_pool: partial syncs for the CPU, a bounced 1-byte status
            // sharing a cache line with its 2-byte header (a note, since the kernel bounced it).
            let virtio = try #require(result.devices.first { $0.name == "0000:00:04.0" })
            #expect(virtio.syncsForCPU > 0 && virtio.bounces > 0)
            #expect(result.findings.contains { $0.rule == "cacheline-sharing" && $0.severity == .note })
        }
    }

    @Test func freeingNullIsANoOp() throws {
        let text = RuleExample(triggers: false, [
            Example.probe,
            "2.0 dma_free: \(Example.dev) dir=BIDIRECTIONAL dma_addr=0 size=0 virt_addr=(nil) attrs=",
        ]).ftraceText
        let result = try Fixtures.analyze(text: text)
        #expect(!result.findings.contains { $0.rule == "free-unknown" })
    }
}
