import Foundation
import Testing
@testable import DMATrace

/// Pathological but valid inputs, small versions of Scripts/stress.sh's cases, made by the
/// same generator (Scripts/pathological.py): each must finish with true facts, no trap.
@Suite struct PathologicalInputTests {
    static let generator = Fixtures.root.appendingPathComponent("Scripts/pathological.py").path

    /// Runs the generator and returns the file it wrote.
    static func generate(_ args: String..., test: String = #function) throws -> String {
        let out = try Fixtures.scratch(test + "generated").appendingPathComponent("trace").path
        var arguments = [generator]
        arguments += args.prefix(2)
        arguments.append(out)
        arguments += args.dropFirst(2)
        let r = try Fixtures.run(arguments, executable: Fixtures.which("python3") ?? "/usr/bin/python3")
        #expect(r.status == 0, "\(r.stderr)")
        return out
    }

    @Test func manyLiveMappingsAreOneGroupedLeakNote() throws {
        let r = try Analyzer.analyze(path: Self.generate("live-mappings", "20000"))
        let dev = try #require(r.devices.first { $0.name == "0000:00:03.0" })
        #expect(dev.maps == 20000 && dev.liveMappings == 20000 && dev.peakLiveMappings == 20000)
        let leaks = r.findings.filter { $0.rule == "mapping-leak" }
        #expect(leaks.count == 1 && leaks[0].message.contains("20000 mappings"), "\(leaks.map(\.message))")
        #expect(!r.findings.contains { $0.severity >= .warning })
    }

    @Test func manyDevicesEachGetTheirOwnProfile() throws {
        let r = try Analyzer.analyze(path: Self.generate("devices", "3000"))
        #expect(r.devices.count == 3000)
        #expect(r.devices.allSatisfy { $0.maps == 1 && $0.unmaps == 1 && $0.liveMappings == 0 })
        #expect(!r.findings.contains { $0.severity >= .warning })
    }

    /// A device's remembered releases cost what they hold: 100,000 devices once took 70 GiB
    /// when each had a fixed table of 4,096 slots.
    @Test func tombstonesCostWhatTheyHold() throws {
        let memory = TombstoneMemory()
        // Each release stamped with its own address, to tell which one a lookup found.
        func tombstone(_ at: UInt64) -> Tombstone {
            Tombstone(reason: .unmapped, event: DMAEvent(timestamp: at, cpu: 0, pid: 1, task: "t", device: "d", kind: .marker("")),
                      original: nil, sequence: 0)
        }
        memory.set(0x1000, tombstone(0x1000))
        #expect(memory.count == 1)
        #expect(memory.get(0x1000)?.event.timestamp == 0x1000 && memory.get(0x2000) == nil)
        for i in 0..<UInt64(20000) { memory.set(i << 12, tombstone(i << 12)) }
        #expect(memory.count == TombstoneMemory.limit)
        #expect(memory.get(19999 << 12)?.event.timestamp == 19999 << 12)
    }

    @Test func overlongLineIsReportedWithItsNumberAndSkipped() throws {
        // 3 MiB, over a 1 MiB limit: the reader meets it across several 1 MiB chunks.
        let path = try Self.generate("long-line", "\(3 << 20)")
        let source = try TraceOpener.open(path: path, options: .init(maxLineBytes: 1 << 20))
        var events: [DMAEvent] = []
        let stats = try source.read { events.append($0) }
        #expect(events.count == 2, "the lines around it are read")
        #expect(stats.unreadableLines == 1)
        let sample = try #require(stats.unreadableSamples.first)
        #expect(sample.line == 2 && sample.reason.contains("longer than 1 MiB"), "\(sample.reason)")
        #expect(sample.text.count <= 300)
    }

    @Test func overlongLineInMemoryToo() throws {
        let map = Example.map("1.0", dir: "TO_DEVICE", dma: "100000", size: 4096)
        let text = RuleExample(triggers: true, [map, "1.1 print: tracing_mark_write: " + String(repeating: "x", count: 5000),
                                                 Example.unmap("1.2", dir: "TO_DEVICE", dma: "100000", size: 4096)]).ftraceText
        var events: [DMAEvent] = []
        let stats = try TextTraceReader(name: "long.txt", text: text, options: .init(maxLineBytes: 1024)).read { events.append($0) }
        #expect(events.count == 2)
        #expect(stats.unreadableLines == 1 && stats.unreadableSamples.first?.reason.contains("longer than 1024 bytes") == true)
    }

    @Test func hugeScatterGatherListIsSyncedAndUnmappedCleanly() throws {
        let r = try Analyzer.analyze(path: Self.generate("sg-list", "20000"))
        let dev = try #require(r.devices.first { $0.name == "0000:00:1f.2" })
        #expect(dev.sgMaps == 1 && dev.syncsForCPU == 1 && dev.syncsForDevice == 1 && dev.liveMappings == 0)
        #expect(!r.findings.contains { $0.severity >= .warning }, "\(r.findings.map(\.message))")
    }

    @Test func syncEntriesOutOfOrderStillFindTheirSegment() throws {
        // Position first, then a scan: a list synced in another order is still in range.
        let f = try Fixtures.analyze(text: RuleExample(triggers: true, [
            Example.probe,
            Example.mapSG("1.0", dir: "FROM_DEVICE", phys: ["200000", "300000"], dma: ["200000", "300000"], sizes: [4096, 4096]),
            "1.1 dma_sync_sg_for_cpu: \(Example.dev) dir=FROM_DEVICE dma_addrs={0x300000,0x200000} sizes={4096,4096}",
            "1.2 dma_sync_sg_for_device: \(Example.dev) dir=FROM_DEVICE dma_addrs={0x300000,0x200000} sizes={4096,4096}",
            Example.unmapSG("1.3", dir: "FROM_DEVICE", phys: ["200000", "300000"]),
        ]).ftraceText).findings
        #expect(!f.contains { $0.rule == "sync-out-of-range" }, "\(f.map(\.message))")
        let outside = try Fixtures.analyze(text: RuleExample(triggers: true, [
            Example.probe,
            Example.mapSG("1.0", dir: "FROM_DEVICE", phys: ["200000", "300000"], dma: ["200000", "300000"], sizes: [4096, 4096]),
            "1.1 dma_sync_sg_for_cpu: \(Example.dev) dir=FROM_DEVICE dma_addrs={0x200000,0x301000} sizes={4096,4096}",
        ]).ftraceText).findings
        #expect(outside.contains { $0.rule == "sync-out-of-range" })
    }

    @Test func timestampsGoingBackwardsWithinACPU() throws {
        var options = AnalysisOptions()
        options.timeline = true
        let r = try Analyzer.analyze(path: Self.generate("backwards", "2000"), options: options)
        // The generator starts with an allocation at 10 s, then pairs from 9 s stepping back 1 us.
        // Unwrapped first: #expect on a UInt64? compared with a literal trips AddressSanitizer
        // (stack-buffer-overflow in the AnyHashable thunk Swift 6.3 generates for it).
        let first = try #require(r.stats.firstTimestamp), last = try #require(r.stats.lastTimestamp)
        #expect(first == 9_000_000_000 - 1999 * 1000)
        #expect(last == 10_000_000_000)
        #expect(r.stats.dmaEvents == 4001)
        // Lines beyond the text reader's reorder window are not replayed out of order: each
        // is accounted for (a gap), never modeled as if it came in time.
        let dev = try #require(r.devices.first)
        #expect(dev.maps == 2000 || !r.lostGaps.isEmpty, "\(dev.maps) maps, \(r.lostGaps.count) gaps")
        // Earlier events go to the first bucket: the timeline spans ~1 s, not 2^64 ns.
        #expect(try #require(r.timeline).width < 1 << 30)
    }

    @Test func traceDatWith256CPUs() throws {
        let trace = try #require(Fixtures.which("trace-cmd"), "trace-cmd is installed by Scripts/setup.sh")
        let dir = try Fixtures.scratch()
        let base = dir.appendingPathComponent("base-v6.dat").path
        let convert = try Fixtures.run(["convert", "-i", Fixtures.sample("k6.12-nvme-e1000e-ahci-xhci.dat"), "-o", base,
                                        "--file-version", "6", "--compression", "none"], executable: trace)
        #expect(convert.status == 0, "\(convert.stderr)")
        let path = try Self.generate("cpus", "256", "--base", base)
        let report = try Fixtures.run(["report", path], executable: trace)
        #expect(report.status == 0 && report.stdout.hasPrefix("cpus=256\n"), "\(report.stderr)")
        let reportLines = report.stdout.split(separator: "\n").count - 1

        let source = try TraceOpener.open(path: path)
        #expect(source.facts.cpus == 256 && source.facts.fileVersion == 6)
        var cpus = Set<Int32>()
        var count = 0
        _ = try source.read { cpus.insert($0.cpu); count += 1 }
        #expect(cpus.count == 256 && count == reportLines)
        let r = try Analyzer.analyze(path: path)
        #expect(r.findings.isEmpty, "\(r.findings.map(\.message))")
        #expect(r.devices.first?.maps == UInt64(count / 2))
    }
}
