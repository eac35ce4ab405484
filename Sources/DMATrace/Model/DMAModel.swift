import DequeModule

/// Replays normalized events through a model of the DMA API (the Perfetto
/// "tracker"): live streaming mappings and coherent allocations per device,
/// with their history and ownership. Reports facts; judges nothing.
public final class DMAModel {
    public static let mappingError: UInt64 = .max
    static let cacheLine: UInt64 = 64
    static let supersededLimit = 65536

    final class DeviceState {
        var profile: DeviceProfile
        var byDMA = IntervalIndex<StreamingMapping>()
        /// sg mappings by the physical address of their first entry (dma_unmap_sg traces physical addresses).
        var sgByFirstPhys: [UInt64: [StreamingMapping]] = [:]
        var live: [Int: StreamingMapping] = [:]
        var allocations: [UInt64: [CoherentAllocation]] = [:]
        var liveAllocations: [Int: CoherentAllocation] = [:]
        var pendingBounces: [UInt64: UInt64] = [:]
        /// Mappings replaced without an unmap on a device that may skip unmaps; kept
        /// (bounded) in case an unmap proves them live after all.
        var superseded: [UInt64: [StreamingMapping]] = [:]
        var supersededOrder = Deque<(UInt64, Int)>()
        var tombstones = TombstoneCache()
        var freedAllocations: [UInt64: DMAEvent] = [:]
        var freedOrder = Deque<UInt64>()

        init(name: String, at ts: UInt64) { profile = DeviceProfile(name: name, at: ts) }
    }

    private(set) var devices: [String: DeviceState] = [:]
    private var physIndex = IntervalIndex<StreamingMapping>()
    private var coherentPhysIndex = IntervalIndex<CoherentAllocation>()
    /// iommu:map entries by IOVA until their iommu:unmap (the events carry no device).
    /// iommu:map events carry no device and IOVAs repeat across domains: an entry
    /// is trusted for an event only when the same task on the same CPU made it just before.
    private struct IOMMUEntry { let phys: UInt64; let size: UInt64; let cpu: Int32; let pid: Int32; let at: UInt64 }
    private var iommuMappings: [UInt64: IOMMUEntry] = [:]
    static let iommuCorrelationWindow: UInt64 = 50_000_000

    private func iommuEntry(for iova: UInt64, serving event: DMAEvent) -> IOMMUEntry? {
        guard let e = iommuMappings[iova], e.cpu == event.cpu, e.pid == event.pid,
              event.timestamp >= e.at, event.timestamp - e.at <= Self.iommuCorrelationWindow else { return nil }
        return e
    }
    private var sawIOMMUMaps = false
    private var nextID = 0
    private var lastTimestampOfCPU: [Int32: UInt64] = [:]
    public private(set) var gaps: [LostGap] = []
    public private(set) var lostBeforeStart = false
    public private(set) var traceStart: UInt64?
    public private(set) var traceEnd: UInt64 = 0
    /// The most recent trace_marker text, and when it was written.
    public private(set) var currentMarker: (text: String, at: UInt64)?
    /// Every trace_marker so far (bounded), to place findings in the workload's phases.
    private var markers: [(at: UInt64, text: String)] = []
    static let markerLimit = 100_000

    /// The marker in force at `timestamp`.
    public func marker(at timestamp: UInt64) -> String? {
        var lo = 0, hi = markers.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if markers[mid].at <= timestamp { lo = mid + 1 } else { hi = mid }
        }
        return lo > 0 ? markers[lo - 1].text : nil
    }

    /// (cpu_addr - phys) of coherent allocations, to infer the linear map's offset.
    private(set) var linearOffsetVotes: [UInt64: Int] = [:]

    private let sink: (ModelFact) -> Void

    public init(sink: @escaping (ModelFact) -> Void) { self.sink = sink }

    public var deviceProfiles: [DeviceProfile] {
        devices.values.map(\.profile).sorted { $0.name < $1.name }
    }

    public func profile(of device: String) -> DeviceProfile? { devices[device]?.profile }

    /// The profile of the device the last event touched (cheap: no lookup).
    var lastTouchedProfile: DeviceProfile? { lastDevice?.profile }

    /// The trace saw the device's driver start and lost nothing before that:
    /// nothing it releases can have been mapped before the trace.
    public func historyComplete(_ device: String) -> Bool {
        !lostBeforeStart && (devices[device]?.profile.historyStartsInTrace ?? false)
    }

    /// Live streaming mappings (and those superseded without unmap), for end-of-trace rules.
    public func outstandingMappings() -> [StreamingMapping] {
        var out: [StreamingMapping] = []
        for d in devices.values {
            out.append(contentsOf: d.byDMA.allValues())
            for list in d.superseded.values { out.append(contentsOf: list) }
        }
        return out.sorted { $0.id < $1.id }
    }

    public func outstandingAllocations() -> [CoherentAllocation] {
        devices.values.flatMap { $0.liveAllocations.values }.sorted { $0.id < $1.id }
    }

    /// The linear map's offset (virtual - physical) when at least two coherent
    /// allocations agree on it, with the share of allocations that agree.
    public var linearMapOffset: (offset: UInt64, agreeing: Int, total: Int)? {
        let total = linearOffsetVotes.values.reduce(0, +)
        // The linear map starts on a large boundary (1 GiB on x86-64, at least 32 MiB on arm64);
        // two vmalloc remaps of contiguous pages can agree by chance, but not on such an offset.
        let aligned = linearOffsetVotes.filter { $0.key & ((1 << 25) - 1) == 0 }
        guard let best = aligned.max(by: { ($0.value, $1.key) < ($1.value, $0.key) }), best.value >= 2, best.value * 4 >= total else { return nil }
        return (best.key, best.value, total)
    }

    private var lastDevice: DeviceState?

    private func device(_ name: String, at ts: UInt64, kind: DMAEventKind) -> DeviceState {
        // Events come in runs of one device: skip the hash for a repeat.
        if let d = lastDevice, d.profile.name == name {
            d.profile.lastTimestamp = ts
            return d
        }
        if let d = devices[name] {
            lastDevice = d
            d.profile.lastTimestamp = ts
            return d
        }
        let d = DeviceState(name: name, at: ts)
        lastDevice = d
        switch kind {
        case .alloc(let a) where !a.failed: d.profile.historyStartsInTrace = true
        case .iommuGroup: d.profile.historyStartsInTrace = true
        default: break
        }
        devices[name] = d
        return d
    }

    // MARK: - Replay

    public func apply(_ event: DMAEvent) {
        if traceStart == nil { traceStart = event.timestamp }
        traceEnd = max(traceEnd, event.timestamp)
        defer { lastTimestampOfCPU[event.cpu] = event.timestamp }
        switch event.kind {
        case .lostEvents(let count):
            let gap = LostGap(cpu: event.cpu, from: lastTimestampOfCPU[event.cpu], to: event.timestamp, count: count)
            gaps.append(gap)
            // Lost before the first record of a CPU (overwrite mode drops the oldest data):
            // no device's history can be assumed to start inside the trace.
            if gap.from == nil { lostBeforeStart = true }
            sink(.eventsLost(gap))
            return
        case .marker(let text):
            currentMarker = (text, event.timestamp)
            if markers.count < Self.markerLimit { markers.append((event.timestamp, text)) }
            return
        case .iommuMap(let m):
            iommuMappings[m.iova] = IOMMUEntry(phys: m.physAddr, size: m.size, cpu: event.cpu, pid: event.pid, at: event.timestamp)
            sawIOMMUMaps = true
            return
        case .iommuUnmap(let u):
            iommuMappings[u.iova] = nil
            return
        case .unknown:
            return
        default:
            break
        }
        guard let name = event.device else { return }
        let dev = device(name, at: event.timestamp, kind: event.kind)
        switch event.kind {
        case .map(let m): mapSingle(m, event, dev)
        case .mapSG(let m): mapSG(m, event, dev)
        case .mapSGError(let e):
            dev.profile.failedMaps += 1
            if let first = e.physAddrs.first {
                remember(dev, Tombstone(reason: .mapFailed, event: event, mapping: nil, start: first, length: 1,
                                       function: .scatterGather), key: first ^ Self.sgKeyTag)
            }
            sink(.mapFailed(event))
        case .unmap(let u): unmapSingle(u, event, dev)
        case .unmapSG(let u): unmapSG(u, event, dev)
        case .sync(let s): sync(s, event, dev)
        case .alloc(let a): alloc(a, event, dev)
        case .free(let f): free(f, event, dev)
        case .bounce(let b):
            dev.profile.bounces += 1
            dev.pendingBounces[b.origAddr] = event.timestamp
            if dev.pendingBounces.count > 4096 { dev.pendingBounces.removeAll(keepingCapacity: true) }
        case .iommuFault(let f):
            sink(.iommuFault(event, f))
        default:
            break
        }
    }

    // MARK: - Map

    private func takeBounce(_ dev: DeviceState, phys: UInt64) -> Bool {
        dev.pendingBounces.removeValue(forKey: phys) != nil
    }

    private func mapSingle(_ m: SingleMapEvent, _ event: DMAEvent, _ dev: DeviceState) {
        if m.dmaAddr == Self.mappingError {
            dev.profile.failedMaps += 1
            remember(dev, Tombstone(reason: .mapFailed, event: event, mapping: nil, start: m.dmaAddr, length: 1,
                                   function: .single(m.api)), key: m.dmaAddr)
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
        let seg = StreamingMapping.Segment(dmaAddr: m.dmaAddr, physAddr: m.physAddr, length: m.size)
        let mapping = StreamingMapping(id: newID(), device: dev.profile.name, function: .single(m.api),
                                       direction: m.direction, attrs: m.attrs, segments: [seg], physRanges: [seg],
                                       inputEntries: 1, truncated: false, mapEvent: event, bounced: bounced)
        classifyPath(dev, segments: [seg], bounced: bounced, mmio: m.api.isMMIO)
        insert(mapping, dev)
    }

    private func mapSG(_ m: SGMapEvent, _ event: DMAEvent, _ dev: DeviceState) {
        if m.mappedEntries == 0 || m.dmaAddrs.isEmpty {
            dev.profile.failedMaps += 1
            if let first = m.physAddrs.first {
                remember(dev, Tombstone(reason: .mapFailed, event: event, mapping: nil, start: first, length: 1,
                                       function: .scatterGather), key: first ^ Self.sgKeyTag)
            }
            sink(.mapFailed(event))
            return
        }
        if m.dmaAddrs.count != m.lengths.count {
            sink(.anomaly(event, "dma_map_sg arrays disagree: \(m.dmaAddrs.count) dma addresses, \(m.lengths.count) lengths", applied: false))
            return
        }
        if !m.truncated && (m.physAddrs.count != m.inputEntries || m.dmaAddrs.count != m.mappedEntries) {
            sink(.anomaly(event, "dma_map_sg counts disagree with arrays: nents=\(m.inputEntries) phys=\(m.physAddrs.count), ents=\(m.mappedEntries) dma=\(m.dmaAddrs.count)", applied: true))
        }
        var segments: [StreamingMapping.Segment] = []
        let pairPhys = m.physAddrs.count == m.dmaAddrs.count
        for (i, (dma, len)) in zip(m.dmaAddrs, m.lengths).enumerated() {
            guard len > 0, !dma.addingReportingOverflow(len - 1).overflow else {
                sink(.anomaly(event, "dma_map_sg segment \(i) has length 0 or wraps past 2^64", applied: false))
                return
            }
            segments.append(.init(dmaAddr: dma, physAddr: pairPhys ? m.physAddrs[i] : 0, length: len))
        }
        // Input entries' lengths are only traced when nothing was merged; otherwise
        // assume each stays within its page, which can miss an overlap but never invents one.
        var physRanges: [StreamingMapping.Segment] = []
        if pairPhys {
            physRanges = segments
        } else {
            for p in m.physAddrs { physRanges.append(.init(dmaAddr: 0, physAddr: p, length: 4096 - (p & 4095))) }
        }
        var bounced = false
        for p in m.physAddrs where takeBounce(dev, phys: p) { bounced = true }
        let mapping = StreamingMapping(id: newID(), device: dev.profile.name, function: .scatterGather,
                                       direction: m.direction, attrs: m.attrs, segments: segments, physRanges: physRanges,
                                       inputEntries: m.inputEntries, truncated: m.truncated, mapEvent: event,
                                       bounced: bounced)
        dev.profile.sgMaps += 1
        classifyPath(dev, segments: pairPhys ? segments : [], bounced: bounced, mmio: false,
                     translatedHint: !pairPhys || segments.contains { $0.dmaAddr != $0.physAddr })
        insert(mapping, dev)
    }

    /// Keys of sg tombstones are tagged so they never collide with dma addresses.
    static let sgKeyTag: UInt64 = 0x5347_0000_0000_0000

    private func classifyPath(_ dev: DeviceState, segments: [StreamingMapping.Segment], bounced: Bool, mmio: Bool,
                              translatedHint: Bool = false) {
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
                if iommuMappings[s.dmaAddr & ~4095] != nil { dev.profile.iommuBackedSegments += 1 }
                if dev.profile.translatedSegments == 1 { withdrawAssumedPhys(dev) }
            }
        }
    }

    /// Allocations made before the device showed a translated address were taken
    /// as dma-direct (dma == phys). Now that it shows an IOMMU or bounce path, that
    /// guess may be an IOVA: take those ranges back out of the physical index.
    private func withdrawAssumedPhys(_ dev: DeviceState) {
        for a in dev.liveAllocations.values where a.physAssumed {
            for r in a.physRanges { coherentPhysIndex.remove(start: r.physAddr, length: r.length, a) }
            if case .value(let v) = a.cpuAddr, let p = a.physRanges.first?.physAddr, let n = linearOffsetVotes[v &- p] {
                linearOffsetVotes[v &- p] = n > 1 ? n - 1 : nil
            }
            a.physRanges = []
            a.physAssumed = false
        }
    }

    private func insert(_ mapping: StreamingMapping, _ dev: DeviceState) {
        mapping.deviceState = dev
        dev.profile.maps += 1
        dev.profile.bytesMapped &+= mapping.size
        checkOverlaps(mapping, dev)
        register(mapping, dev)
        dev.profile.peakLiveMappings = max(dev.profile.peakLiveMappings, dev.profile.liveMappings)
        if dev.profile.firstMapTimestamp == nil { dev.profile.firstMapTimestamp = mapping.mappedAt }
        dev.profile.lastMapTimestamp = mapping.mappedAt
        forgetTombstones(dev, for: mapping)
        sink(.mapped(mapping))
    }

    private func checkOverlaps(_ mapping: StreamingMapping, _ dev: DeviceState) {
        guard !mapping.function.isMMIOMapping else { return }
        var reported = Set<Int>()
        for r in mapping.physRanges {
            for hit in physIndex.overlapping(start: r.physAddr, length: r.length) {
                let other = hit.value
                guard other !== mapping, reported.insert(other.id).inserted else { continue }
                let lo = max(hit.start, r.physAddr)
                let hi = min(hit.end, IntervalIndex<StreamingMapping>.end(r.physAddr, r.length))
                let writeCandidate = mapping.deviceMayWrite || other.deviceMayWrite
                if writeCandidate, let otherDev = devices[other.device], otherDev.profile.mayskipUnmaps {
                    // The older mapping may be one its driver legitimately never unmapped:
                    // judge the overlap only if an unmap later proves it was still live.
                    other.pendingOverlaps.append(mapping)
                    supersede(other, otherDev)
                } else {
                    sink(.physicalOverlap(new: mapping, existing: other, bytes: lo..<hi))
                }
            }
            for hit in coherentPhysIndex.overlapping(start: r.physAddr, length: r.length) {
                let lo = max(hit.start, r.physAddr)
                let hi = min(hit.end, IntervalIndex<StreamingMapping>.end(r.physAddr, r.length))
                sink(.overlapsCoherent(mapping, hit.value, bytes: lo..<hi))
            }
            checkCacheLines(mapping, r)
        }
        // On a translated path (IOMMU or bounce slots) the kernel hands out each address once:
        // a live one handed out again means the trace missed its unmap or the driver unmapped
        // something else.
        if dev.profile.translatedSegments > 0 || dev.profile.bouncedMappings > 0 {
            for s in mapping.segments where s.dmaAddr != s.physAddr {
                for hit in dev.byDMA.overlapping(start: s.dmaAddr, length: s.length) where hit.value !== mapping {
                    sink(.dmaAddressReuse(new: mapping, existing: hit.value))
                    // The kernel considers the old one gone; keeping it would blame every later event on it.
                    removeLive(hit.value, dev)
                }
            }
        }
    }

    private func checkCacheLines(_ mapping: StreamingMapping, _ r: StreamingMapping.Segment) {
        let line = Self.cacheLine
        let start = r.physAddr
        let end = IntervalIndex<StreamingMapping>.end(start, r.length)
        var probes: [(UInt64, UInt64)] = []
        if start % line != 0 { probes.append((start - start % line, start % line)) }
        if end % line != 0, end < UInt64.max - line { probes.append((end, line - end % line)) }
        for (probeStart, probeLength) in probes {
            for hit in physIndex.overlapping(start: probeStart, length: probeLength) where hit.value !== mapping {
                // Byte overlaps are double mappings, not line sharing.
                if hit.start < end && start < hit.end { continue }
                guard mapping.deviceMayWrite || hit.value.deviceMayWrite else { continue }
                sink(.sharedCacheLine(new: mapping, neighbor: hit.value, line: probeStart - probeStart % line))
            }
        }
    }

    private func supersede(_ mapping: StreamingMapping, _ dev: DeviceState) {
        guard !mapping.superseded else { return }
        removeLive(mapping, dev)
        mapping.superseded = true
        dev.profile.supersededMappings += 1
        let key = mapping.isScatterGather ? mapping.physAddr ^ Self.sgKeyTag : mapping.dmaAddr
        dev.superseded[key, default: []].append(mapping)
        dev.supersededOrder.append((key, mapping.id))
        if dev.supersededOrder.count > Self.supersededLimit {
            let (oldKey, oldID) = dev.supersededOrder.removeFirst()
            dev.superseded[oldKey]?.removeAll { $0.id == oldID }
            if dev.superseded[oldKey]?.isEmpty == true { dev.superseded[oldKey] = nil }
        }
    }

    private func takeSuperseded(_ dev: DeviceState, key: UInt64, where match: (StreamingMapping) -> Bool) -> StreamingMapping? {
        guard var list = dev.superseded[key], let i = list.firstIndex(where: match) else { return nil }
        let m = list.remove(at: i)
        dev.superseded[key] = list.isEmpty ? nil : list
        return m
    }

    private func removeLive(_ mapping: StreamingMapping, _ dev: DeviceState) {
        for s in mapping.segments { dev.byDMA.remove(start: s.dmaAddr, length: s.length, mapping) }
        if !mapping.function.isMMIOMapping {
            for r in mapping.physRanges { physIndex.remove(start: r.physAddr, length: r.length, mapping) }
        }
        if mapping.isScatterGather {
            dev.sgByFirstPhys[mapping.physAddr]?.removeAll { $0 === mapping }
            if dev.sgByFirstPhys[mapping.physAddr]?.isEmpty == true { dev.sgByFirstPhys[mapping.physAddr] = nil }
        }
        dev.profile.liveMappings -= 1
        dev.profile.liveBytes &-= mapping.size
    }

    // MARK: - Unmap

    private func unmapSingle(_ u: SingleUnmapEvent, _ event: DMAEvent, _ dev: DeviceState) {
        dev.profile.unmaps += 1
        let candidates = dev.byDMA.containing(u.dmaAddr).map(\.value).filter { $0.dmaAddr == u.dmaAddr }
        if let m = best(candidates, size: u.size, direction: u.direction, preferSG: false) {
            release(m, dev, event: event, size: u.size, direction: u.direction, function: .single(u.api), entries: nil)
            return
        }
        if let m = takeSuperseded(dev, key: u.dmaAddr, where: { _ in true }) {
            confirmLive(m)
            release(m, dev, event: event, size: u.size, direction: u.direction, function: .single(u.api),
                    entries: nil, wasLive: false)
            return
        }
        sink(.unmapWithoutMapping(event, unmatched(dev, key: u.dmaAddr, address: u.dmaAddr)))
    }

    private func unmapSG(_ u: SGUnmapEvent, _ event: DMAEvent, _ dev: DeviceState) {
        dev.profile.unmaps += 1
        guard let first = u.physAddrs.first else {
            sink(.anomaly(event, "dma_unmap_sg with no entries", applied: false))
            return
        }
        func samePages(_ m: StreamingMapping) -> Bool {
            let known = m.physRanges.map(\.physAddr)
            return zip(known, u.physAddrs).allSatisfy { $0 == $1 }
        }
        let sgCandidates = dev.sgByFirstPhys[first] ?? []
        // One page can start several live lists (mkfs maps the zero page dozens of times):
        // the list with the same entry count and pages is the one being released.
        let n = u.physAddrs.count
        let chosen = sgCandidates.first(where: { samePages($0) && $0.inputEntries == n })
            ?? sgCandidates.first(where: { samePages($0) && $0.truncated && $0.physRanges.count == n })
            ?? sgCandidates.first(where: samePages) ?? sgCandidates.first
            ?? physIndex.containing(first).lazy.map(\.value)
                .first { $0.device == dev.profile.name && !$0.isScatterGather && $0.physAddr == first }
        if let m = chosen {
            release(m, dev, event: event, size: nil, direction: u.direction, function: .scatterGather,
                    entries: u.physAddrs.count)
            return
        }
        if let m = takeSuperseded(dev, key: first ^ Self.sgKeyTag, where: samePages) {
            confirmLive(m)
            release(m, dev, event: event, size: nil, direction: u.direction, function: .scatterGather,
                    entries: u.physAddrs.count, wasLive: false)
            return
        }
        sink(.unmapWithoutMapping(event, unmatched(dev, key: first ^ Self.sgKeyTag, address: nil)))
    }

    /// An unmap proved a superseded mapping was live: its overlaps were real.
    private func confirmLive(_ m: StreamingMapping) {
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

    private func best(_ candidates: [StreamingMapping], size: UInt64?, direction: DMADirection?,
                      preferSG: Bool) -> StreamingMapping? {
        guard !candidates.isEmpty else { return nil }
        func score(_ m: StreamingMapping) -> Int {
            var s = 0
            if m.isScatterGather == preferSG { s += 4 }
            if let size, m.segments.first?.length == size { s += 2 }
            if m.direction == direction { s += 1 }
            return s
        }
        // Oldest first among equals, as the kernel would have the longest-held one released.
        return candidates.max { (score($0), -$0.id) < (score($1), -$1.id) }
    }

    private func release(_ m: StreamingMapping, _ dev: DeviceState, event: DMAEvent, size: UInt64?,
                         direction: DMADirection?, function: StreamingMapping.Function, entries: Int?,
                         wasLive: Bool = true) {
        if wasLive { removeLive(m, dev) }
        if !m.pendingOverlaps.isEmpty { confirmLive(m) }
        let key = m.isScatterGather ? m.physAddr ^ Self.sgKeyTag : m.dmaAddr
        remember(dev, Tombstone(reason: .unmapped, event: event, mapping: m, start: m.dmaAddr,
                               length: m.size, function: m.function), key: key)
        sink(.unmapped(m, unmap: event, size: size, direction: direction, function: function, entries: entries))
    }

    private func remember(_ dev: DeviceState, _ t: Tombstone, key: UInt64) {
        dev.tombstones.set(key, t)
    }

    private func forgetTombstones(_ dev: DeviceState, for m: StreamingMapping) {
        let key = m.isScatterGather ? m.physAddr ^ Self.sgKeyTag : m.dmaAddr
        if let t = dev.tombstones.get(key), t.reason == .unmapped { dev.tombstones.remove(key) }
    }

    private func unmatched(_ dev: DeviceState, key: UInt64, address: UInt64?) -> UnmatchedContext {
        if address == Self.mappingError {
            return .mappingError(failedMap: dev.tombstones.get(Self.mappingError)?.event)
        }
        if let t = dev.tombstones.get(key) {
            switch t.reason {
            case .mapFailed: return .mappingError(failedMap: t.event)
            case .unmapped: return .alreadyReleased(release: t.event, original: t.mapping?.mapEvent)
            }
        }
        let near = address.flatMap { dev.byDMA.containing($0).first?.value }
        return .neverSeen(mayPredateTrace: !historyComplete(dev.profile.name), near: near)
    }

    // MARK: - Sync

    private func sync(_ s: SyncEvent, _ event: DMAEvent, _ dev: DeviceState) {
        if s.target == .cpu { dev.profile.syncsForCPU += 1 } else { dev.profile.syncsForDevice += 1 }
        guard let first = s.dmaAddrs.first else {
            sink(.anomaly(event, "sync with no address", applied: false))
            return
        }
        let length = s.lengths.first ?? 0
        let hits = dev.byDMA.containing(first).map(\.value)
        guard let m = hits.first(where: { $0.isScatterGather == s.scatterGather }) ?? hits.first else {
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
        if !m.bounced { dev.profile.syncsOfUnbouncedMappings += 1 }
        m.record(event)
        var outOfRange = false
        for (a, l) in zip(s.dmaAddrs, s.lengths) {
            // After iommu-dma merged a list, the entries past the mapped segments carry
            // DMA_MAPPING_ERROR and length 0: they are not part of the sync.
            if l == 0 || a == Self.mappingError { continue }
            guard let seg = m.segment(containing: a) else { outOfRange = true; continue }
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
        if s.scatterGather, !m.truncated, m.isScatterGather, s.dmaAddrs.count != m.inputEntries {
            entries = (m.inputEntries, s.dmaAddrs.count)
        }
        sink(.synced(m, SyncObservation(event: event, sync: s, outOfRange: outOfRange, alreadyCPUOwned: alreadyCPU,
                                        entriesMismatch: entries)))
    }

    /// Makes a mapping live in every index (the reverse of `removeLive`).
    private func register(_ m: StreamingMapping, _ dev: DeviceState) {
        for s in m.segments { dev.byDMA.insert(start: s.dmaAddr, length: s.length, m) }
        if !m.function.isMMIOMapping {
            for r in m.physRanges { physIndex.insert(start: r.physAddr, length: r.length, m) }
        }
        if m.isScatterGather {
            dev.sgByFirstPhys[m.physAddr, default: []].append(m)
        }
        dev.profile.liveMappings += 1
        dev.profile.liveBytes &+= m.size
    }

    // MARK: - Coherent memory

    private func alloc(_ a: AllocEvent, _ event: DMAEvent, _ dev: DeviceState) {
        if a.failed || a.dmaAddr == Self.mappingError || (a.dmaAddr == 0 && a.cpuAddr.value == 0) { return }
        guard a.size > 0, !a.dmaAddr.addingReportingOverflow(a.size - 1).overflow else {
            sink(.anomaly(event, "allocation of size 0 or wrapping past 2^64", applied: false))
            return
        }
        dev.profile.allocs += 1
        if dev.profile.firstMapTimestamp == nil { dev.profile.probeAllocations += 1 }
        var phys: [StreamingMapping.Segment] = []
        var assumed = false
        if a.api == .sgt, !a.physAddrs.isEmpty {
            let chunk = max(a.size / UInt64(a.physAddrs.count), 1)
            phys = a.physAddrs.map { .init(dmaAddr: 0, physAddr: $0, length: chunk) }
        } else if iommuEntry(for: a.dmaAddr, serving: event) != nil {
            // An IOVA range is backed page by page, in any physical order: build the
            // allocation's physical extent from every iommu:map that served it.
            var iova = a.dmaAddr
            let end = IntervalIndex<StreamingMapping>.end(a.dmaAddr, a.size)
            while iova < end, let e = iommuEntry(for: iova, serving: event), e.size > 0 {
                phys.append(.init(dmaAddr: iova, physAddr: e.phys, length: min(e.size, end - iova)))
                iova &+= e.size
            }
        } else if dev.profile.translatedSegments == 0 && !sawIOMMUMaps {
            // dma-direct as far as the trace shows: the bus address is the physical address.
            // Withdrawn if the device later turns out to be translated.
            phys = [.init(dmaAddr: a.dmaAddr, physAddr: a.dmaAddr, length: a.size)]
            assumed = true
        }
        let allocation = CoherentAllocation(id: newID(), device: dev.profile.name, event: a, allocEvent: event,
                                            physRanges: phys)
        allocation.physAssumed = assumed
        allocation.beforeFirstMap = dev.profile.firstMapTimestamp == nil
        if let p = phys.first?.physAddr, case .value(let v) = a.cpuAddr, !a.attrs.contains(.noKernelMapping),
           a.api != .sgt, linearOffsetVotes.count < 512 || linearOffsetVotes[v &- p] != nil {
            linearOffsetVotes[v &- p, default: 0] += 1
        }
        for r in phys { coherentPhysIndex.insert(start: r.physAddr, length: r.length, allocation) }
        dev.allocations[a.dmaAddr, default: []].append(allocation)
        dev.liveAllocations[allocation.id] = allocation
        dev.profile.liveAllocations = dev.liveAllocations.count
        dev.profile.liveCoherentBytes &+= allocation.size
        dev.profile.peakLiveAllocations = max(dev.profile.peakLiveAllocations, dev.liveAllocations.count)
        dev.freedAllocations[a.dmaAddr] = nil
        sink(.allocated(allocation))
    }

    private func free(_ f: FreeEvent, _ event: DMAEvent, _ dev: DeviceState) {
        // dma_free_attrs() traces before it returns on a NULL cpu_addr (6.12+ traces error
        // paths too): freeing NULL is a legal no-op, as drivers do for optional buffers.
        if f.cpuAddr.value == 0 && (f.size == 0 || f.dmaAddr == 0) { return }
        dev.profile.frees += 1
        let candidates = dev.allocations[f.dmaAddr] ?? []
        let chosen = candidates.first { $0.api == f.api && $0.size == f.size } ?? candidates.first { $0.api == f.api }
            ?? candidates.first
        guard let a = chosen else {
            if let previous = dev.freedAllocations[f.dmaAddr] {
                sink(.freeWithoutAllocation(event, .alreadyReleased(release: previous, original: nil)))
            } else {
                sink(.freeWithoutAllocation(event, .neverSeen(mayPredateTrace: !historyComplete(dev.profile.name), near: nil)))
            }
            return
        }
        dev.allocations[f.dmaAddr]?.removeAll { $0 === a }
        if dev.allocations[f.dmaAddr]?.isEmpty == true { dev.allocations[f.dmaAddr] = nil }
        dev.liveAllocations[a.id] = nil
        dev.profile.liveAllocations = dev.liveAllocations.count
        dev.profile.liveCoherentBytes &-= a.size
        dev.profile.lastFreeTimestamp = event.timestamp
        if a.beforeFirstMap { dev.profile.probeAllocationsFreed += 1 }
        for r in a.physRanges { coherentPhysIndex.remove(start: r.physAddr, length: r.length, a) }
        a.history.append(event)
        if dev.freedAllocations.updateValue(event, forKey: f.dmaAddr) == nil { dev.freedOrder.append(f.dmaAddr) }
        if dev.freedOrder.count > TombstoneCache.slots { dev.freedAllocations[dev.freedOrder.removeFirst()] = nil }
        sink(.freed(a, free: event, f))
    }

    private func newID() -> Int {
        nextID += 1
        return nextID
    }
}

extension StreamingMapping.Function {
    var isMMIOMapping: Bool {
        if case .single(let api) = self { return api.isMMIO }
        return false
    }
}
