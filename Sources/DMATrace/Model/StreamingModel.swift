/// Streaming mappings: map, overlap checks, unmap, sync and ownership.
extension DMAModel {
    func takeBounce(_ dev: DeviceState, phys: UInt64) -> Bool {
        !dev.pendingBounces.isEmpty && dev.pendingBounces.removeValue(forKey: phys) != nil
    }

    /// Takes the event: the mapping keeps it.
    func mapSingle(_ m: SingleMapEvent, _ event: consuming DMAEvent, _ dev: DeviceState) {
        if m.dmaAddr == Self.mappingError {
            dev.profile.failedMaps += 1
            remember(dev, Tombstone(reason: .mapFailed, event: copy event, original: nil), key: m.dmaAddr)
            sink(.mapFailed(event))
            return
        }
        guard m.size > 0 else {
            sink(.anomaly(event, "map of size 0", applied: false))
            return
        }
        guard m.dmaAddr.addingReportingOverflow(m.size - 1).overflow == false,
              m.physAddr.addingReportingOverflow(m.size - 1).overflow == false else {
            sink(.anomaly(event, "address range wraps past 2^64", applied: false))
            return
        }
        let bounced = takeBounce(dev, phys: m.physAddr)
        // One array for both: a live mapping's footprint is what bounds memory (10 M live mappings).
        let segs = SegmentList(single: StreamingMapping.Segment(dmaAddr: m.dmaAddr, physAddr: m.physAddr, length: m.size))
        classifyPath(dev, segments: segs, bounced: bounced, mmio: m.api.isMMIO, serving: event)
        let mapping = StreamingMapping(id: newID(), deviceState: dev, function: .single(m.api),
                                       direction: m.direction, attrs: m.attrs, segments: segs, physRanges: segs,
                                       entryPhys: nil, inputEntries: 1, truncated: false, mapEvent: consume event,
                                       bounced: bounced)
        insert(mapping, dev)
    }

    func classifyPath(_ dev: DeviceState, segments: SegmentList, bounced: Bool, mmio: Bool,
                      translatedHint: Bool = false, serving event: DMAEvent? = nil) {
        if mmio { return }
        if bounced {
            // A bounce slot is not an IOMMU translation: coherent memory of this device
            // is still dma-direct (dma == phys), so nothing assumed about it changes.
            dev.profile.bouncedMappings += 1
            return
        }
        if segments.isEmpty && translatedHint {
            dev.profile.translatedSegments += 1
            if dev.profile.translatedSegments == 1 { withdrawAssumedPhys(dev) }
        }
        for s in segments {
            if s.dmaAddr == s.physAddr {
                dev.profile.directSegments += 1
            } else {
                dev.profile.translatedSegments += 1
                let served = iommuMappings[s.dmaAddr & ~4095] != nil
                if served { dev.profile.iommuBackedSegments += 1 }
                dev.translation.note(dma: s.dmaAddr, phys: s.physAddr)
                // A constant offset with no iommu:map behind it is a bus offset, not an IOMMU.
                dev.profile.busOffset = dev.profile.iommuBackedSegments == 0 && !sawIOMMUMaps ? dev.translation.busOffset : nil
                if dev.profile.translatedSegments == 1 { withdrawAssumedPhys(dev) }
            }
        }
    }

    /// Allocations made before the device showed a translated address were taken
    /// as dma-direct (dma == phys). Now that it shows an IOMMU or bounce path, that
    /// guess may be an IOVA: take those ranges back out of the physical index.
    func withdrawAssumedPhys(_ dev: DeviceState) {
        for m in dev.assumedOwned where dev.byDMA.containing(m.dmaAddr).contains(where: { $0.value === m }) {
            for r in m.physRanges { physIndex.remove(start: r.physAddr, length: r.length, m) }
            m.physRanges = []
        }
        dev.assumedOwned = []
        for a in dev.liveAllocations.values where a.physAssumed {
            for r in a.physRanges { coherentPhysIndex.remove(start: r.physAddr, length: r.length, a) }
            if case .value(let v) = a.cpuAddr, let p = a.physRanges.first?.physAddr, let n = linearOffsetVotes[v &- p] {
                linearOffsetVotes[v &- p] = n > 1 ? n - 1 : nil
            }
            a.physRanges = []
            a.physAssumed = false
        }
    }

    /// Takes the caller's reference, so that the fact below moves it instead of taking another.
    func insert(_ mapping: consuming StreamingMapping, _ dev: DeviceState) {
        // dma_alloc_pages / _noncontiguous memory counts as an allocation, not a map.
        if !mapping.isAllocation {
            dev.profile.maps += 1
            dev.profile.bytesMapped &+= mapping.size
        }
        checkOverlaps(mapping, dev)
        register(mapping, dev)
        dev.profile.peakLiveMappings = max(dev.profile.peakLiveMappings, dev.profile.liveMappings)
        if !mapping.isAllocation {
            if dev.profile.firstMapTimestamp == nil { dev.profile.firstMapTimestamp = mapping.mappedAt }
            dev.profile.lastMapTimestamp = mapping.mappedAt
            dev.profile.probeAllocationsFreedAfterLastMap = 0
        }
        sink(.mapped(consume mapping))
    }

    /// kernel/dma/debug.c add_dma_entry(): a new entry with DMA_ATTR_SKIP_CPU_SYNC is not
    /// checked for overlaps (the documented way to map a buffer already mapped for another
    /// device), and an overlap is allowed when both entries are "cache clean": they declare
    /// DMA_ATTR_CACHELINES_OVERLAP (DMA_ATTR_DEBUGGING_IGNORE_CACHELINES) or DMA_ATTR_REQUIRE_COHERENT.
    static func overlapExempt(new: StreamingMapping, existing: StreamingMapping) -> Bool {
        let clean: DMAAttributes = [.cachelinesOverlap, .requireCoherent]
        return new.attrs.contains(.skipCPUSync)
            || (!new.attrs.isDisjoint(with: clean) && !existing.attrs.isDisjoint(with: clean))
    }

    func checkOverlaps(_ mapping: StreamingMapping, _ dev: DeviceState) {
        guard !mapping.function.isMMIOMapping else { return }
        checkSelfOverlap(mapping)
        // Ids of the mappings already judged, for an sg list whose ranges meet one twice; made
        // at the first overlap (even an empty set cost every map a retain and a release).
        var reported: Set<Int>?
        func judge(_ r: StreamingMapping.Segment) {
            physIndex.forEachOverlapping(start: r.physAddr, length: r.length) { hitStart, hitEnd, other in
                guard other !== mapping else { return }
                if reported == nil { reported = [] }
                guard reported!.insert(other.id).inserted else { return }
                let lo = max(hitStart, r.physAddr)
                let hi = min(hitEnd, IntervalIndex<StreamingMapping>.end(r.physAddr, r.length))
                let writeCandidate = mapping.deviceMayWrite || other.deviceMayWrite
                if mapping.attrs.contains(.skipCPUSync), mapping.sharedWith.count < 4 { mapping.sharedWith.append(other) }
                if writeCandidate && Self.overlapExempt(new: mapping, existing: other) { return }
                if writeCandidate, other.deviceState.profile.mayskipUnmaps, !other.isAllocation {
                    // The older mapping may be one its driver legitimately never unmapped:
                    // judge the overlap only if an unmap later proves it was still live.
                    other.pendingOverlaps.append(mapping)
                    supersede(other, other.deviceState)
                } else {
                    sink(.physicalOverlap(new: mapping, existing: other, bytes: lo..<hi))
                }
            }
            coherentPhysIndex.forEachOverlapping(start: r.physAddr, length: r.length) { hitStart, hitEnd, allocation in
                if mapping.attrs.contains(.skipCPUSync) { mapping.sharesCoherentMemory = true }
                let lo = max(hitStart, r.physAddr)
                let hi = min(hitEnd, IntervalIndex<StreamingMapping>.end(r.physAddr, r.length))
                sink(.overlapsCoherent(mapping, allocation, bytes: lo..<hi))
            }
            checkCacheLines(mapping, r)
        }
        // A single mapping's one range without a copy of the list (a retain and a release).
        if mapping.physRanges.count == 1, let r = mapping.physRanges.first {
            judge(r)
        } else {
            for r in mapping.physRanges { judge(r) }
        }
        // On a translated path (IOMMU or bounce slots) the kernel hands out each address once:
        // a live one handed out again means the trace missed its unmap or the driver unmapped
        // something else. Behind a constant bus offset every mapping of a page has the same
        // bus address: there, shared addresses are the physical overlaps judged above.
        if dev.profile.translatedSegments > 0 || dev.profile.bouncedMappings > 0 {
            let offset = dev.profile.busOffset
            for s in mapping.segments where s.dmaAddr != s.physAddr && (offset == nil || s.dmaAddr &- s.physAddr != offset!) {
                for hit in dev.byDMA.overlapping(start: s.dmaAddr, length: s.length) where hit.value !== mapping {
                    sink(.dmaAddressReuse(new: mapping, existing: hit.value))
                    // The kernel considers the old one gone; keeping it would blame every later event on it.
                    removeLive(hit.value, dev)
                    forgetOlderTombstone(dev, leaving: hit.value)
                }
            }
        }
    }

    /// One list that maps the same memory twice where the device may write (debug.c: the second
    /// entry's add_dma_entry() meets the first one's cache line, EEXIST).
    func checkSelfOverlap(_ mapping: StreamingMapping) {
        guard mapping.physRanges.count > 1, mapping.deviceMayWrite, !mapping.attrs.contains(.skipCPUSync) else { return }
        let sorted = mapping.physRanges.sorted { $0.physAddr < $1.physAddr }
        var reachEnd = IntervalIndex<StreamingMapping>.end(sorted[0].physAddr, sorted[0].length)
        for r in sorted.dropFirst() {
            if r.physAddr < reachEnd {
                let hi = min(reachEnd, IntervalIndex<StreamingMapping>.end(r.physAddr, r.length))
                sink(.physicalOverlap(new: mapping, existing: mapping, bytes: r.physAddr..<hi))
                return
            }
            reachEnd = max(reachEnd, IntervalIndex<StreamingMapping>.end(r.physAddr, r.length))
        }
    }

    func checkCacheLines(_ mapping: StreamingMapping, _ r: StreamingMapping.Segment) {
        let line = Self.cacheLine
        let start = r.physAddr
        let end = IntervalIndex<StreamingMapping>.end(start, r.length)
        func probe(_ probeStart: UInt64, _ probeLength: UInt64) {
            physIndex.forEachOverlapping(start: probeStart, length: probeLength) { hitStart, hitEnd, neighbor in
                // Byte overlaps are double mappings, not line sharing.
                guard neighbor !== mapping, !(hitStart < end && start < hitEnd),
                      mapping.deviceMayWrite || neighbor.deviceMayWrite else { return }
                sink(.sharedCacheLine(new: mapping, neighbor: neighbor, line: probeStart - probeStart % line))
            }
        }
        // The partial lines at either end, if any; no array of them: most maps are line-aligned,
        // and the others would allocate one each.
        if start % line != 0 { probe(start - start % line, start % line) }
        if end % line != 0, end < UInt64.max - line { probe(end, line - end % line) }
    }

    func supersede(_ mapping: StreamingMapping, _ dev: DeviceState) {
        guard !mapping.superseded else { return }
        removeLive(mapping, dev)
        forgetOlderTombstone(dev, leaving: mapping)
        mapping.superseded = true
        dev.profile.supersededMappings += 1
        let key = Self.tombstoneKey(mapping)
        dev.superseded[key, default: []].append(mapping)
        dev.supersededOrder.append((key, mapping.id))
        if dev.supersededOrder.count > Self.supersededLimit {
            let (oldKey, oldID) = dev.supersededOrder.removeFirst()
            dev.superseded[oldKey]?.removeAll { $0.id == oldID }
            if dev.superseded[oldKey]?.isEmpty == true { dev.superseded[oldKey] = nil }
        }
    }

    func takeSuperseded(_ dev: DeviceState, key: UInt64, where match: (StreamingMapping) -> Bool) -> StreamingMapping? {
        guard var list = dev.superseded[key], let i = list.firstIndex(where: match) else { return nil }
        let m = list.remove(at: i)
        dev.superseded[key] = list.isEmpty ? nil : list
        return m
    }

    func removeLive(_ mapping: StreamingMapping, _ dev: DeviceState) {
        if mapping.segments.count == 1, let s = mapping.segments.first {
            dev.byDMA.remove(handle: mapping.dmaHandle, start: s.dmaAddr, length: s.length, mapping)
        } else {
            for s in mapping.segments { dev.byDMA.remove(start: s.dmaAddr, length: s.length, mapping) }
        }
        removeLiveBesidesDMAIndex(mapping, dev)
    }

    /// Takes a live mapping out of every index and returns it, with the dma index's reference
    /// when the index can hand it over (a one-bucket range): that index holds every live mapping,
    /// and taking its reference instead of another saves an unmap a retain and a release.
    func takeLive(_ found: Unmanaged<StreamingMapping>, _ dev: DeviceState) -> StreamingMapping {
        let handedOver = found._withUnsafeGuaranteedRef { m in
            guard m.segments.count == 1, let s = m.segments.first,
                  dev.byDMA.take(handle: m.dmaHandle, start: s.dmaAddr, length: s.length, found) else { return false }
            removeLiveBesidesDMAIndex(m, dev)
            return true
        }
        if handedOver { return found.takeRetainedValue() }
        let m = found.takeUnretainedValue()
        removeLive(m, dev)
        return m
    }

    private func removeLiveBesidesDMAIndex(_ mapping: StreamingMapping, _ dev: DeviceState) {
        if !mapping.function.isMMIOMapping {
            if mapping.physRanges.count == 1, let r = mapping.physRanges.first {
                physIndex.remove(handle: mapping.physHandle, start: r.physAddr, length: r.length, mapping)
            } else {
                for r in mapping.physRanges { physIndex.remove(start: r.physAddr, length: r.length, mapping) }
            }
        }
        if mapping.isScatterGather {
            dev.sgByFirstPhys[mapping.physAddr]?.removeAll { $0 === mapping }
            if dev.sgByFirstPhys[mapping.physAddr]?.isEmpty == true { dev.sgByFirstPhys[mapping.physAddr] = nil }
        }
        if mapping.isAllocation {
            dev.profile.liveOwnedAllocations -= 1
            dev.profile.liveAllocations -= 1
            dev.profile.liveCoherentBytes &-= mapping.size
        } else {
            dev.profile.liveMappings -= 1
            dev.profile.liveBytes &-= mapping.size
        }
    }

    /// Makes a mapping live in every index (the reverse of `removeLive`).
    func register(_ m: StreamingMapping, _ dev: DeviceState) {
        if m.segments.count == 1, let s = m.segments.first {
            m.dmaHandle = dev.byDMA.insert(start: s.dmaAddr, length: s.length, m)
        } else {
            for s in m.segments { dev.byDMA.insert(start: s.dmaAddr, length: s.length, m) }
        }
        if !m.function.isMMIOMapping {
            if m.physRanges.count == 1, let r = m.physRanges.first {
                m.physHandle = physIndex.insert(start: r.physAddr, length: r.length, m)
            } else {
                for r in m.physRanges { physIndex.insert(start: r.physAddr, length: r.length, m) }
            }
        }
        if m.isScatterGather {
            dev.sgByFirstPhys[m.physAddr, default: []].append(m)
        }
        if m.isAllocation {
            dev.profile.liveOwnedAllocations += 1
            dev.profile.liveAllocations += 1
            dev.profile.liveCoherentBytes &+= m.size
            dev.profile.peakLiveAllocations = max(dev.profile.peakLiveAllocations, dev.profile.liveAllocations)
        } else {
            dev.profile.liveMappings += 1
            dev.profile.liveBytes &+= m.size
        }
    }

    // MARK: - Unmap

    /// Takes the event: the unmap's fact keeps it.
    func unmapSingle(_ u: SingleUnmapEvent, _ event: consuming DMAEvent, _ dev: DeviceState) {
        dev.profile.unmaps += 1
        var choice = BestCandidate(size: u.size, direction: u.direction, preferSG: false)
        dev.byDMA.forEach(containing: u.dmaAddr) { if $0.dmaAddr == u.dmaAddr { choice.consider($0) } }
        if let found = choice.best {
            release(takeLive(found, dev), dev, event: consume event, size: u.size, direction: u.direction,
                    function: .single(u.api), entries: nil, wasLive: false)
            return
        }
        if let m = takeSuperseded(dev, key: u.dmaAddr, where: { _ in true }) {
            confirmLive(m)
            release(m, dev, event: consume event, size: u.size, direction: u.direction, function: .single(u.api),
                    entries: nil, wasLive: false)
            return
        }
        sink(.unmapWithoutMapping(event, unmatched(dev, key: u.dmaAddr, address: u.dmaAddr)))
    }

    /// An unmap proved a superseded mapping was live: its overlaps were real.
    func confirmLive(_ m: StreamingMapping) {
        for newer in m.pendingOverlaps {
            var bytes: Range<UInt64> = 0..<0
            outer: for a in m.physRanges {
                for b in newer.physRanges {
                    let lo = max(a.physAddr, b.physAddr)
                    let hi = min(IntervalIndex<StreamingMapping>.end(a.physAddr, a.length),
                                 IntervalIndex<StreamingMapping>.end(b.physAddr, b.length))
                    if lo < hi { bytes = lo..<hi; break outer }
                }
            }
            sink(.physicalOverlap(new: newer, existing: m, bytes: bytes))
        }
        m.pendingOverlaps = []
    }

    /// Takes the caller's references (see insert): the mapping's and the event's.
    func release(_ m: consuming StreamingMapping, _ dev: DeviceState, event: consuming DMAEvent, size: UInt64?,
                 direction: DMADirection?, function: StreamingMapping.Function, entries: Int?,
                 wasLive: Bool = true) {
        if wasLive { removeLive(m, dev) }
        if !m.pendingOverlaps.isEmpty { confirmLive(m) }
        remember(dev, Tombstone(reason: .unmapped, event: copy event, original: m.mapEvent), key: Self.tombstoneKey(m))
        sink(.unmapped(consume m, unmap: consume event, size: size, direction: direction, function: function,
                       entries: entries))
    }

    // MARK: - Sync

    func sync(_ s: SyncEvent, _ event: DMAEvent, _ dev: DeviceState) {
        if s.target == .cpu { dev.profile.syncsForCPU += 1 } else { dev.profile.syncsForDevice += 1 }
        guard let first = s.dmaAddrs.first else {
            sink(.anomaly(event, "sync with no address", applied: false))
            return
        }
        let length = s.lengths.first ?? 0
        var anyHit: StreamingMapping?
        let sameKind = dev.byDMA.first(containing: first) { m in
            if anyHit == nil { anyHit = m }
            return m.isScatterGather == s.scatterGather
        }
        guard let m = sameKind ?? anyHit else {
            if let sup = takeSuperseded(dev, key: first, where: { _ in true }) {
                // Synced, so it was live after all.
                confirmLive(sup)
                sup.superseded = false
                dev.profile.supersededMappings -= 1
                register(sup, dev)
                if s.target == .cpu { dev.profile.syncsForCPU -= 1 } else { dev.profile.syncsForDevice -= 1 }
                sync(s, event, dev)
                return
            }
            sink(.syncWithoutMapping(event, unmatched(dev, key: first, address: first)))
            return
        }
        if !m.bounced {
            dev.profile.syncsOfUnbouncedMappings += 1
            if dev.profile.firstBounceTimestamp == nil { dev.profile.syncsOfUnbouncedBeforeBounce += 1 }
        }
        m.record(event)
        var outOfRange = false
        for (i, (a, l)) in zip(s.dmaAddrs, s.lengths).enumerated() {
            // After iommu-dma merged a list, the entries past the mapped segments carry
            // DMA_MAPPING_ERROR and length 0 (__finalise_sg); a noncontiguous allocation's
            // entries past the first carry no DMA range at all: neither is part of the sync.
            if l == 0 || a == Self.mappingError { continue }
            guard let seg = m.segment(containing: a, position: i) else { outOfRange = true; continue }
            if l > seg.length - (a - seg.dmaAddr) { outOfRange = true }
        }
        var alreadyCPU = false
        let range = first..<IntervalIndex<StreamingMapping>.end(first, max(length, 1))
        if s.target == .cpu {
            m.syncsForCPU += 1
            alreadyCPU = m.cpuOwnedRanges.contains { $0.overlaps(range) }
            m.cpuOwnedRanges.append(range)
            if m.cpuOwnedRanges.count > 64 { m.cpuOwnedRanges.removeFirst(m.cpuOwnedRanges.count - 64) }
            m.owner = .cpu
        } else {
            m.syncsForDevice += 1
            m.cpuOwnedRanges.removeAll { $0.overlaps(range) }
            if m.cpuOwnedRanges.isEmpty { m.owner = .device }
        }
        var entries: (Int, Int)?
        if s.scatterGather, m.isScatterGather, s.dmaAddrs.count != m.inputEntries {
            entries = (m.inputEntries, s.dmaAddrs.count)
        }
        sink(.synced(m, SyncObservation(event: event, sync: s, outOfRange: outOfRange, alreadyCPUOwned: alreadyCPU,
                                        entriesMismatch: entries)))
    }
}

/// The live mapping an unmap most likely releases, chosen as candidates stream by: the
/// same kind of mapping first, then the same size, then the same direction, and the
/// oldest among equals, as the kernel would have the longest-held one released.
struct BestCandidate {
    let size: UInt64?
    let direction: DMADirection?
    let preferSG: Bool
    /// Unretained: the candidates are live, in the index being searched, until one is taken out.
    private(set) var best: Unmanaged<StreamingMapping>?
    private var bestScore = -1

    init(size: UInt64?, direction: DMADirection?, preferSG: Bool) {
        self.size = size
        self.direction = direction
        self.preferSG = preferSG
    }

    mutating func consider(_ m: StreamingMapping) {
        var s = 0
        if m.isScatterGather == preferSG && !m.isAllocation { s += 4 }
        if let size, m.segments.first?.length == size { s += 2 }
        if m.direction == direction { s += 1 }
        if s > bestScore || (s == bestScore && m.id < best!._withUnsafeGuaranteedRef(\.id)) {
            best = .passUnretained(m)
            bestScore = s
        }
    }
}
