import Foundation
import Testing
@testable import DMATrace

/// The model's bookkeeping on hand-made traces: facts, not rule verdicts.
@Suite struct ModelTests {
    let dev = Example.dev

    func findings(_ lines: [String]) throws -> [Finding] {
        try Fixtures.analyze(text: RuleExample(triggers: true, lines).ftraceText).findings
    }

    /// An event is stored behind one reference; printing it must still show what it says
    /// (test failures and debugging print events).
    @Test func anEventPrintsItsFields() {
        var e = DMAEvent(timestamp: 1_234_567, cpu: 1, pid: 42, task: "kworker/1:0", device: "0000:00:03.0",
                         kind: .unmap(SingleUnmapEvent(api: .page, dmaAddr: 0x1000, size: 4096, direction: .toDevice, attrs: [])))
        let text = "\(e)"
        #expect(text.contains("timestamp: 1234567") && text.contains("kworker/1:0") && text.contains("0000:00:03.0") && text.contains("4096"), "\(text)")
        let copy = e
        e.stack = KernelStack(frames: ["dma_unmap_page_attrs+0x10"])
        #expect(copy.stack == nil && e.stack?.frames == ["dma_unmap_page_attrs+0x10"] && copy != e)
        e.stack = nil
        #expect(copy == e && copy.hashValue == e.hashValue)
    }

    /// Live mappings hold their device's state strongly, and the device's indexes hold them:
    /// the model must break that cycle when it goes, or every analysis in a process (audit's
    /// workers, `analyze A B C`, the tests) keeps each trace's outstanding mappings for good.
    @Test func aModelWithLiveMappingsIsFreed() {
        weak var weakModel: DMAModel?
        weak var weakMapping: StreamingMapping?
        do {
            let model = DMAModel { _ in }
            for (i, addr) in [UInt64(0x10_0000), 0x20_0000].enumerated() {
                model.apply(DMAEvent(timestamp: UInt64(i + 1) * 1000, cpu: 0, pid: 1, task: "t", device: dev,
                                     kind: .map(SingleMapEvent(api: .page, physAddr: addr, dmaAddr: addr, size: 4096,
                                                               direction: .fromDevice, attrs: []))))
            }
            #expect(model.outstandingMappings().count == 2)
            weakMapping = model.outstandingMappings().first
            weakModel = model
        }
        #expect(weakModel == nil)
        #expect(weakMapping == nil, "a live mapping outlived its model")
    }

    /// debug.c forgets an entry when it is unmapped, so an unmap that then matches nothing is a
    /// second unmap only if nothing mapped the address since. The model does not write that down
    /// on every map: it asks, when an unmap or sync matches nothing, whether a mapping made after
    /// the tombstone holds its key (single: the dma address; sg: the first entry's page).
    @Test func aTombstoneGoesStaleWhenItsAddressIsMappedAgain() throws {
        let model = DMAModel { _ in }
        var t: UInt64 = 0
        func apply(_ kind: DMAEventKind) {
            t += 1000
            model.apply(DMAEvent(timestamp: t, cpu: 0, pid: 1, task: "t", device: dev, kind: kind))
        }
        let x: UInt64 = 0x10_0000, p: UInt64 = 0x20_0000
        let map = DMAEventKind.map(SingleMapEvent(api: .page, physAddr: x, dmaAddr: x, size: 4096, direction: .toDevice, attrs: []))
        let unmap = DMAEventKind.unmap(SingleUnmapEvent(api: .page, dmaAddr: x, size: 4096, direction: .toDevice, attrs: []))
        let mapSG = DMAEventKind.mapSG(SGMapEvent(inputEntries: 1, mappedEntries: 1, physAddrs: [p], dmaAddrs: [p], lengths: [4096],
                                                  truncated: false, direction: .toDevice, attrs: []))
        let unmapSG = DMAEventKind.unmapSG(SGUnmapEvent(physAddrs: [p], direction: .toDevice, attrs: []))
        func context(_ key: UInt64, _ address: UInt64?) throws -> UnmatchedContext {
            model.unmatched(try #require(model.devices[dev]), key: key, address: address)
        }
        func releasedAt(_ c: UnmatchedContext) -> UInt64? {
            if case .alreadyReleased(let release, _) = c { return release.timestamp }
            return nil
        }
        apply(map)
        apply(unmap)
        #expect(releasedAt(try context(x, x)) == 2000)
        apply(map)
        #expect(releasedAt(try context(x, x)) == nil, "mapped again: the old unmap is not this address's last word")
        apply(unmap)
        #expect(releasedAt(try context(x, x)) == 4000)

        let sgKey = p ^ DMAModel.sgKeyTag
        apply(mapSG)
        apply(unmapSG)
        #expect(releasedAt(try context(sgKey, nil)) == 6000)
        apply(mapSG)
        #expect(releasedAt(try context(sgKey, nil)) == nil)
        #expect(releasedAt(try context(x, x)) == 4000, "an sg list over other memory leaves the single's tombstone")
    }

    /// Unmaps are routed by whether they give back every parameter as mapped: the rules that
    /// compare parameters get only the others, so one that differs in anything must not be
    /// routed as "as mapped".
    @Test func unmapFactsAreRoutedByWhetherTheyMatchTheirMap() {
        var kinds: [ModelFact.Kind] = []
        let model = DMAModel { fact in if case .unmapped = fact { kinds.append(fact.kind) } }
        var t: UInt64 = 0
        func apply(_ kind: DMAEventKind) {
            t += 1000
            model.apply(DMAEvent(timestamp: t, cpu: 0, pid: 1, task: "t", device: dev, kind: kind))
        }
        let x: UInt64 = 0x10_0000
        func map(_ dir: DMADirection = .toDevice) -> DMAEventKind {
            .map(SingleMapEvent(api: .page, physAddr: x, dmaAddr: x, size: 4096, direction: dir, attrs: []))
        }
        func unmap(size: UInt64 = 4096, _ dir: DMADirection? = .toDevice, api: SingleMapAPI = .page) -> DMAEventKind {
            .unmap(SingleUnmapEvent(api: api, dmaAddr: x, size: size, direction: dir, attrs: []))
        }
        func mapSG(entries: Int) -> DMAEventKind {
            .mapSG(SGMapEvent(inputEntries: entries, mappedEntries: 1, physAddrs: [x], dmaAddrs: [x], lengths: [4096],
                              truncated: false, direction: .fromDevice, attrs: []))
        }
        let unmapSG = DMAEventKind.unmapSG(SGUnmapEvent(physAddrs: [x], direction: .fromDevice, attrs: []))
        for (m, u) in [(map(), unmap()), (map(), unmap(size: 512)), (map(), unmap(.fromDevice)), (map(), unmap(nil)),
                       (map(), unmap(api: .resource)), (mapSG(entries: 1), unmapSG), (mapSG(entries: 2), unmapSG),
                       (map(), unmapSG), (mapSG(entries: 1), unmap())] {
            apply(m)
            apply(u)
        }
        #expect(kinds == [.unmappedAsMapped, .unmappedSingle, .unmappedSingle, .unmappedSingle, .unmappedSingle,
                          .unmappedAsMapped, .unmappedSG, .unmappedSG, .unmappedSingle])
    }

    @Test func mergedSGSyncEntriesAreNotOutOfRange() throws {
        // iommu-dma merged two entries into one segment; the sync still lists nents
        // entries, the surplus as DMA_MAPPING_ERROR with length 0.
        let f = try findings([
            Example.probe,
            Example.mapSG("1.0", dir: "FROM_DEVICE", phys: ["200000", "201000"], dma: ["fffe0000"], sizes: [8192]),
            "1.1 dma_sync_sg_for_cpu: \(dev) dir=FROM_DEVICE dma_addrs={0xfffe0000,0xffffffffffffffff} sizes={8192,0}",
            Example.unmapSG("1.2", dir: "FROM_DEVICE", phys: ["200000", "201000"]),
        ])
        #expect(!f.contains { $0.rule == "sync-out-of-range" })
        #expect(!f.contains { $0.severity >= .warning }, "\(f.map(\.message))")
    }

    @Test func unmapOfAFailedSGMapIsMappingErrorUsed() throws {
        let f = try findings([
            Example.probe,
            "1.0 dma_map_sg_err: \(dev) dir=TO_DEVICE dma_addrs={0x300000} err=-12 attrs=",
            Example.unmapSG("1.1", dir: "TO_DEVICE", phys: ["300000"]),
        ])
        #expect(f.contains { $0.rule == "mapping-error-used" && $0.severity == .error })
        #expect(!f.contains { $0.rule == "unmap-unknown" })
    }

    @Test func unknownAttributeNamesKeepTheKnownOnes() throws {
        #expect(DMAAttributes(text: "SKIP_CPU_SYNC|SOME_FUTURE_ATTR") == .skipCPUSync)
        #expect(DMAAttributes(text: "CACHE_CLEAN") == .cachelinesOverlap)
        #expect(DMAAttributes(text: "0x20") == .skipCPUSync)
    }

    @Test func overwrittenTracefsSnapshotLosesHistory() throws {
        let text = """
        # tracer: nop
        #
        # entries-in-buffer/entries-written: 2/90   #P:2
        #
                  <idle>-0     [000] d.h2.     1.000000: dma_unmap_page: \(dev) dir=FROM_DEVICE dma_addr=1000 size=4096 attrs=
        """
        let result = try Fixtures.analyze(text: text)
        #expect(result.lostGaps.count == 1 && result.lostGaps[0].count == 88)
        let unknown = try #require(result.findings.first { $0.rule == "unmap-unknown" })
        #expect(unknown.severity == .note)
    }

    @Test func lostEventsDowngradeWhatTheyCouldExplain() throws {
        let text = RuleExample(triggers: true, [
            Example.probe,
            Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096),
            Example.map("1.1", dir: "FROM_DEVICE", dma: "200000", size: 4096),
            Example.sync("1.15", cpu: true, dir: "FROM_DEVICE", dma: "200000", size: 4096),
            "cpu1 1.2 dma_unmap_page: \(dev) dir=FROM_DEVICE dma_addr=100000 size=2048 attrs=",
            "CPU:1 [LOST 3 EVENTS]",
            "cpu1 1.3 dma_unmap_page: \(dev) dir=FROM_DEVICE dma_addr=300000 size=4096 attrs=",
        ]).ftraceText
        let result = try Fixtures.analyze(text: text)
        // Before the gap: the size mismatch keeps its severity.
        #expect(result.findings.contains { $0.rule == "unmap-size-mismatch" && $0.severity == .error })
        // After it: the map may be among the lost events.
        let unknown = try #require(result.findings.first { $0.rule == "unmap-unknown" })
        #expect(unknown.severity == .note && unknown.caveats.contains { $0.contains("lost") })
        #expect(result.findings.contains { $0.rule == "events-lost" })
    }

    @Test func assumedDirectAllocationIsWithdrawnWhenTheDeviceIsTranslated() throws {
        // Recorded without -e iommu: the first allocation looks direct until a map shows an IOVA.
        let f = try findings([
            Example.alloc("0.5", dma: "fffff000", size: 4096, virt: "0xffff888000200000"),
            Example.map("1.0", dir: "TO_DEVICE", dma: "ffffe000", size: 4096, phys: "300000"),
            Example.map("1.1", dir: "TO_DEVICE", dma: "ffffd000", size: 512, phys: "fffff000"),
            Example.unmap("1.2", dir: "TO_DEVICE", dma: "ffffd000", size: 512),
            Example.unmap("1.3", dir: "TO_DEVICE", dma: "ffffe000", size: 4096),
        ])
        #expect(!f.contains { $0.rule == "streaming-over-coherent" })
    }

    /// A mapping's segments keep the first inline: the list must still read as the array it
    /// was made from, empty, single or long.
    @Test func segmentListReadsAsItsArray() {
        let segs = (0..<5).map { StreamingMapping.Segment(dmaAddr: UInt64($0) << 12, physAddr: UInt64($0) << 20, length: 4096 + UInt64($0)) }
        for n in [0, 1, 2, 5] {
            let list = SegmentList(Array(segs.prefix(n)))
            #expect(Array(list) == Array(segs.prefix(n)) && list.count == n && list.first == segs.prefix(n).first)
            #expect(list.totalLength == segs.prefix(n).reduce(0) { $0 + $1.length })
        }
        let one = SegmentList(single: segs[3])
        #expect(Array(one) == [segs[3]] && one[0] == segs[3] && one.totalLength == 4099)
        let empty: SegmentList = []
        #expect(empty.isEmpty && empty.first == nil && empty.totalLength == 0)
        // Lengths wrap as the sizes the kernel traces do (a corrupted record's).
        let huge = SegmentList([segs[0], StreamingMapping.Segment(dmaAddr: 0, physAddr: 0, length: .max)])
        #expect(huge.totalLength == 4095)
    }

    @Test func intervalIndexFindsOverlapsAcrossBucketsOnce() {
        final class Box { let n: Int; init(_ n: Int) { self.n = n } }
        let index = IntervalIndex<Box>()
        let a = Box(1), b = Box(2), big = Box(3)
        index.insert(start: 0x1_0000 - 16, length: 32, a)        // straddles a bucket edge
        index.insert(start: 0x5_0000, length: 0x3_0000, b)        // spans four buckets
        index.insert(start: 0, length: 1 << 30, big)               // lives in the large list
        #expect(index.overlapping(start: 0x1_0000, length: 1).map(\.value.n).sorted() == [1, 3])
        #expect(index.overlapping(start: 0x6_0000, length: 0x2_0000).map(\.value.n).sorted() == [2, 3])
        index.remove(start: 0x5_0000, length: 0x3_0000, b)
        #expect(index.overlapping(start: 0x6_0000, length: 1).map(\.value.n) == [3])
        #expect(index.count == 2)
        #expect(index.overlapping(start: UInt64.max - 10, length: 100).isEmpty)
    }

    /// The index holds one reference per registered range, in raw storage: every value must be
    /// let go by remove, removeAll and deinit, and survive the node pool's and the bucket
    /// table's growth (ranges spread over many buckets) until then.
    @Test func intervalIndexHoldsAndLetsGoOfItsValues() {
        final class Box { let n: Int; init(_ n: Int) { self.n = n } }
        var weak: [() -> Box?] = []
        func spread(_ index: IntervalIndex<Box>, from: Int, count: Int) {
            for i in from..<from + count {
                let box = Box(i)
                weak.append { [weak box] in box }
                // Every range in its own bucket, some spanning two, one in the large list.
                let length: UInt64 = i == from ? (64 << 20) + 1 : i % 7 == 0 ? 0x1_8000 : 4096
                index.insert(start: UInt64(i) << 20, length: length, box)
            }
        }
        do {
            let index = IntervalIndex<Box>()
            spread(index, from: 0, count: 5000)
            #expect(index.count == 5000)
            #expect(weak.allSatisfy { $0() != nil }, "the index alone keeps its values")
            for i in stride(from: 1, to: 5000, by: 2) {
                #expect(index.first(containing: (UInt64(i) << 20) + 100) { _ in true }?.n == i)
                index.remove(start: UInt64(i) << 20, length: i % 7 == 0 ? 0x1_8000 : 4096, weak[i]()!)
            }
            #expect(index.count == 2500 && weak.indices.allSatisfy { ($0 % 2 == 1) == (weak[$0]() == nil) })
            index.removeAll()
            #expect(index.count == 0 && weak.allSatisfy { $0() == nil })
            weak = []
            spread(index, from: 0, count: 3000)
            #expect(index.overlapping(start: 10 << 20, length: 1).map(\.value.n).sorted() == [0, 10])
        }
        #expect(weak.allSatisfy { $0() == nil }, "deinit lets go of what is still registered")
    }

    /// An index made not to retain (the physical index, whose mappings the dma index holds)
    /// keeps no value alive and gives back nothing: the values' lives are their owner's alone.
    @Test func anUnretainingIntervalIndexLeavesLivesToTheOwner() {
        final class Box { let n: Int; init(_ n: Int) { self.n = n } }
        weak var dropped: Box?
        var owner: [Box] = (0..<100).map(Box.init)
        do {
            let index = IntervalIndex<Box>(retainingValues: false)
            for b in owner { index.insert(start: UInt64(b.n) << 12, length: 4096, b) }
            #expect(index.first(containing: 5 << 12) { _ in true }?.n == 5)
            index.remove(start: 5 << 12, length: 4096, owner[5])
            dropped = owner[5]
            owner.remove(at: 5)
            #expect(dropped == nil, "the index kept a value its owner let go")
            #expect(index.count == 99)
        }
        // Neither the index's life nor its end took or gave back a reference.
        for i in owner.indices { #expect(isKnownUniquelyReferenced(&owner[i])) }
    }

    /// `take` hands the index's own reference to the caller: the value lives on that reference
    /// alone, and dies with it. A handle that no longer names the value, another value, or an
    /// index that holds no references takes nothing and leaves the registration in place.
    @Test func takingFromAnIntervalIndexHandsOverItsReference() {
        final class Box { let n: Int; init(_ n: Int) { self.n = n } }
        let index = IntervalIndex<Box>()
        weak var gone: Box?
        var handle: IntervalIndex<Box>.Handle?
        var other = Box(2)
        do {
            let box = Box(1)
            handle = index.insert(start: 0x1000, length: 4096, box)
            index.insert(start: 0x1000, length: 4096, other)
            gone = box
        }
        #expect(gone != nil, "the index holds it")
        let u = Unmanaged.passUnretained(gone!)
        #expect(!index.take(handle: handle, start: 0x1000, length: 4096, Unmanaged.passUnretained(other)),
                "another value's take through this handle")
        #expect(!index.take(handle: handle, start: 0x1000, length: 8192, u), "another length")
        #expect(index.count == 2)
        #expect(index.take(handle: handle, start: 0x1000, length: 4096, u))
        #expect(index.count == 1 && index.containing(0x1000).map(\.value.n) == [2])
        #expect(gone != nil, "taken, not given back")
        _ = u.takeRetainedValue()
        #expect(gone == nil, "the taken reference was the last")
        #expect(!index.take(handle: handle, start: 0x1000, length: 4096, u), "a stale handle")
        #expect(isKnownUniquelyReferenced(&other) == false, "the other registration still holds its value")

        let unretaining = IntervalIndex<Box>(retainingValues: false)
        let h = unretaining.insert(start: 0x2000, length: 4096, other)
        #expect(!unretaining.take(handle: h, start: 0x2000, length: 4096, Unmanaged.passUnretained(other)),
                "an index without references has none to hand over")
        #expect(unretaining.count == 1)
    }

    /// The index against a plain list, operation by operation: buckets are doubly linked chains
    /// through one pool of reused nodes, so removing from a chain's head, middle or tail (by
    /// lookup, by the insert's handle, or by a handle that names another range or a reused
    /// node) and reusing the freed node must leave every lookup (and its registration order)
    /// as the list has it, also after the bucket table grew under outstanding handles.
    @Test(arguments: [UInt64(1), 2, 3])
    func intervalIndexAgreesWithAList(seed: UInt64) {
        final class Box { let n: Int; init(_ n: Int) { self.n = n } }
        var rng = SplitMix(seed: seed)
        let index = IntervalIndex<Box>()
        var list: [(start: UInt64, length: UInt64, box: Box, handle: IntervalIndex<Box>.Handle?)] = []
        var staleHandles: [IntervalIndex<Box>.Handle] = []
        // A few 64 KiB buckets, so chains grow long; some ranges span buckets, a few are large,
        // and some land far away, one bucket each, so the table grows.
        func range() -> (UInt64, UInt64) {
            let start = rng.next() % 20 == 0 ? rng.next() % (1 << 40) : rng.next() % 0x4_0000
            let r = rng.next() % 100
            return (start, r < 2 ? (64 << 20) + 1 : r < 10 ? rng.next() % 0x3_0000 + 1 : rng.next() % 8192 + 1)
        }
        for step in 0..<4000 {
            if list.isEmpty || rng.next() % 3 != 0 {
                let (start, length) = range()
                let box = Box(step)
                let handle = index.insert(start: start, length: length, box)
                let oneBucket = length <= 64 << 20 && start >> 16 == (IntervalIndex<Box>.end(start, length) - 1) >> 16
                #expect((handle != nil) == oneBucket)
                list.append((start, length, box, handle))
            } else {
                let victim = list.remove(at: Int(rng.next() % UInt64(list.count)))
                switch rng.next() % 4 {
                case 0: index.remove(start: victim.start, length: victim.length, victim.box)
                case 1: index.remove(handle: victim.handle, start: victim.start, length: victim.length, victim.box)
                case 2:
                    // Taken with the index's reference (dropped here), or removed when it cannot be.
                    let u = Unmanaged.passUnretained(victim.box)
                    if index.take(handle: victim.handle, start: victim.start, length: victim.length, u) {
                        _ = u.takeRetainedValue()
                    } else {
                        #expect(victim.handle == nil, "a live one-bucket range's own handle must take it")
                        index.remove(start: victim.start, length: victim.length, victim.box)
                    }
                default:
                    let other = staleHandles.isEmpty ? list.randomElement(using: &rng)?.handle
                        : staleHandles[Int(rng.next() % UInt64(staleHandles.count))]
                    index.remove(handle: other, start: victim.start, length: victim.length, victim.box)
                }
                if let h = victim.handle { staleHandles.append(h) }
            }
            #expect(index.count == list.count)
            let (qs, ql) = range()
            let qe = IntervalIndex<Box>.end(qs, ql)
            let expected = list.filter { $0.start < qe && qs < IntervalIndex<Box>.end($0.start, $0.length) }.map(\.box.n)
            #expect(index.overlapping(start: qs, length: ql).map(\.value.n).sorted() == expected.sorted())
            var visited: [Int] = []
            index.forEachOverlapping(start: qs, length: ql) { _, _, value in visited.append(value.n) }
            #expect(visited.sorted() == expected.sorted())
            // first(containing:) meets ranges in registration order (bucket ranges before large ones).
            let containing = list.filter { $0.start <= qs && qs < IntervalIndex<Box>.end($0.start, $0.length) }
            let firstSmall = containing.first { $0.length <= 64 << 20 }?.box.n
            let firstAny = index.first(containing: qs) { _ in true }?.n
            #expect(firstAny == (containing.contains { $0.length > 64 << 20 } ? firstAny : firstSmall))
            #expect(Set(index.containing(qs).map(\.value.n)) == Set(containing.map(\.box.n)))
            var contained: [Int] = []
            index.forEach(containing: qs) { contained.append($0.n) }
            #expect(contained.sorted() == containing.map(\.box.n).sorted())
        }
        #expect(Set(index.allValues().map(\.n)) == Set(list.map(\.box.n)))
    }
}
