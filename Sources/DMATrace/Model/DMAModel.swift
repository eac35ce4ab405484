import DequeModule

/// Replays normalized events through a model of the DMA API (the Perfetto
/// "tracker"): live streaming mappings and owned or coherent memory per device,
/// with their history and ownership. Reports facts; judges nothing.
///
/// The domains live in their own files: streaming mappings (StreamingModel.swift),
/// scatter-gather lists (SGModel.swift), allocations (AllocationModel.swift), what the
/// trace shows about the platform (PlatformFacts.swift), the recent past (Tombstones.swift).
public final class DMAModel {
    public static let mappingError: UInt64 = .max
    static let cacheLine: UInt64 = 64
    static let supersededLimit = 65536

    final class DeviceState {
        var profile: DeviceProfile
        let byDMA = IntervalIndex<StreamingMapping>()
        /// sg mappings by the physical address of their first entry (dma_unmap_sg traces physical addresses).
        var sgByFirstPhys: [UInt64: [StreamingMapping]] = [:]
        var allocations: [UInt64: [CoherentAllocation]] = [:]
        var liveAllocations: [Int: CoherentAllocation] = [:]
        var pendingBounces = AddressMap<UInt64>()
        /// Mappings replaced without an unmap on a device that may skip unmaps; kept
        /// (bounded) in case an unmap proves them live after all.
        var superseded: [UInt64: [StreamingMapping]] = [:]
        var supersededOrder = Deque<(UInt64, Int)>()
        let tombstones = TombstoneMemory()
        var freedAllocations: [UInt64: DMAEvent] = [:]
        var freedOrder = Deque<UInt64>()
        var translation = AddressTranslation()
        /// dma_alloc_pages memory whose bus address was taken as physical (dma-direct assumed).
        var assumedOwned: [StreamingMapping] = []

        init(name: String, at ts: UInt64) { profile = DeviceProfile(name: name, at: ts) }

        /// Lets go of every mapping the device still holds: they hold the device back.
        func releaseMappings() {
            byDMA.removeAll()
            sgByFirstPhys = [:]
            superseded = [:]
            supersededOrder = []
            assumedOwned = []
        }
    }

    deinit {
        for d in devices.values { d.releaseMappings() }
    }

    private(set) var devices: [String: DeviceState] = [:]
    /// Unretained: a mapping is in it only while it is live in its device's `byDMA`, which holds
    /// it (`register` and `removeLive` change both).
    let physIndex = IntervalIndex<StreamingMapping>(retainingValues: false)
    let coherentPhysIndex = IntervalIndex<CoherentAllocation>()
    /// iommu:map events carry no device and IOVAs repeat across domains: an entry
    /// is trusted for an event only when the same task on the same CPU made it just before.
    struct IOMMUEntry { let phys: UInt64; let size: UInt64; let cpu: Int32; let pid: Int32; let at: UInt64 }
    var iommuMappings: [UInt64: IOMMUEntry] = [:]
    static let iommuCorrelationWindow: UInt64 = 50_000_000

    func iommuEntry(for iova: UInt64, serving event: DMAEvent) -> IOMMUEntry? {
        guard let e = iommuMappings[iova], e.cpu == event.cpu, e.pid == event.pid,
              event.timestamp >= e.at, event.timestamp - e.at <= Self.iommuCorrelationWindow else { return nil }
        return e
    }
    var sawIOMMUMaps = false
    public private(set) var iommuMaps: UInt64 = 0
    public private(set) var iommuUnmaps: UInt64 = 0
    public private(set) var iommuUnmapsUnknown: UInt64 = 0
    private var nextID = 0
    private let lastTimestampOfCPU = LastTimestampOfCPU()
    public private(set) var gaps: [LostGap] = []
    public private(set) var lostBeforeStart = false
    public private(set) var traceStart: UInt64?
    public private(set) var traceEnd: UInt64 = 0
    /// The most recent trace_marker text, and when it was written.
    public private(set) var currentMarker: (text: String, at: UInt64)?
    /// Every trace_marker so far (bounded), to place findings in the workload's phases.
    private var markers: [(at: UInt64, text: String)] = []
    static let markerLimit = 100_000

    /// The traced kernel's architecture: from its release when the trace stores it, else
    /// from the first unhashed kernel address that tells.
    public private(set) var architecture: ArchitectureFact?

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
    var linearOffsetVotes: [UInt64: Int] = [:]

    let sink: (ModelFact) -> Void

    /// The trace has dma events at all (kernels before 6.12 trace only swiotlb and iommu).
    public private(set) var sawDMAEvents = false

    public init(kernelRelease: String? = nil, sink: @escaping (ModelFact) -> Void) {
        self.sink = sink
        architecture = ArchitectureFact.fromRelease(kernelRelease)
    }

    public var deviceProfiles: [DeviceProfile] {
        devices.values.map { d in
            var p = d.profile
            p.dmaEventsTraced = sawDMAEvents
            return p
        }.sorted { $0.name < $1.name }
    }

    public func profile(of device: String) -> DeviceProfile? { devices[device]?.profile }

    /// The profile of the device the last event touched (cheap: no lookup).
    var lastTouchedProfile: DeviceProfile? { lastDevice?.profile }

    /// The trace saw the device's driver start and lost nothing before that:
    /// nothing it releases can have been mapped before the trace.
    public func historyComplete(_ device: String) -> Bool {
        !lostBeforeStart && (devices[device]?.profile.historyStartsInTrace ?? false)
    }

    /// The lost-event gap before `timestamp` that could have swallowed an event, if any.
    func gap(before timestamp: UInt64) -> LostGap? {
        gaps.last { ($0.from ?? 0) < timestamp }
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

    /// Unretained: `devices` holds every device state for the model's life, and taking and
    /// dropping a reference to it cost two atomic operations on every event.
    @inline(__always)
    private func device(_ name: String, for event: DMAEvent) -> Unmanaged<DeviceState> {
        // Events come in runs of one device: skip the hash for a repeat.
        if let d = lastDevice, d.profile.name == name {
            d.profile.lastTimestamp = event.timestamp
            return .passUnretained(d)
        }
        return .passUnretained(lookUpDevice(name, for: event))
    }

    private func lookUpDevice(_ name: String, for event: DMAEvent) -> DeviceState {
        let ts = event.timestamp
        if let d = devices[name] {
            lastDevice = d
            d.profile.lastTimestamp = ts
            return d
        }
        let d = DeviceState(name: name, at: ts)
        d.profile.architecture = architecture
        lastDevice = d
        switch event.kind {
        case .alloc(let a) where !a.failed: d.profile.historyStartsInTrace = true
        case .iommuGroup: d.profile.historyStartsInTrace = true
        default: break
        }
        devices[name] = d
        return d
    }

    /// A kernel address seen unhashed may tell the architecture when the release did not.
    func learnArchitecture(from va: UInt64) {
        guard architecture == nil || architecture!.confidence < .strong,
              let fact = ArchitectureFact.fromKernelAddress(va),
              architecture.map({ fact.confidence > $0.confidence }) ?? true else { return }
        architecture = fact
        for d in devices.values { d.profile.architecture = fact }
    }

    // MARK: - Replay

    /// Takes the event: a map's mapping and an unmap's fact keep it without another reference.
    public func apply(_ event: consuming DMAEvent) {
        let ts = event.timestamp, cpu = event.cpu
        if traceStart == nil { traceStart = ts }
        traceEnd = max(traceEnd, ts)
        defer { lastTimestampOfCPU[cpu] = ts }
        // Single maps and unmaps, most of every trace, first: they hand the event on, which a
        // switch over the kind cannot (it borrows the event to its end). The closure cannot
        // consume what it captures either: it takes the event out of an optional. The rest go
        // through one switch (three, each copying the 65-byte kind, cost 170 instructions).
        if case .map(let m) = event.kind {
            guard let dev = dmaDevice(of: event) else { return }
            var owned: DMAEvent? = consume event
            dev._withUnsafeGuaranteedRef { mapSingle(m, owned.take()!, $0) }
            return
        }
        if case .unmap(let u) = event.kind {
            guard let dev = dmaDevice(of: event) else { return }
            var owned: DMAEvent? = consume event
            dev._withUnsafeGuaranteedRef { unmapSingle(u, owned.take()!, $0) }
            return
        }
        switch event.kind {
        case .map, .unmap: return
        case .mapSG(let m): onDevice(event) { mapSG(m, event, $0) }
        case .mapSGError(let e): onDevice(event) { mapSGFailed(e, event, $0) }
        case .unmapSG(let u): onDevice(event) { unmapSG(u, event, $0) }
        case .sync(let s): onDevice(event) { sync(s, event, $0) }
        case .alloc(let a): onDevice(event) { alloc(a, event, $0) }
        case .free(let f): onDevice(event) { free(f, event, $0) }
        // swiotlb and iommu events say nothing about whether the kernel traces dma events.
        case .bounce(let b): onDevice(event, dmaEvent: false) { bounce(b, event, $0) }
        case .iommuFault(let f): onDevice(event, dmaEvent: false) { _ in sink(.iommuFault(event, f)) }
        case .iommuGroup(let g):
            onDevice(event, dmaEvent: false) { if g.change == .remove { $0.profile.removedFromGroupAt = event.timestamp } }
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
            iommuMaps += 1
            return
        case .iommuUnmap(let u):
            iommuUnmaps += 1
            if iommuMappings.removeValue(forKey: u.iova) == nil { iommuUnmapsUnknown += 1 }
            return
        case .unknown:
            return
        case .outOfOrder(let kind, let ts, let line):
            // Not applied: where it belongs is already past. The ingest follows it with a gap.
            var original = copy event
            original.kind = kind
            original.timestamp = ts
            let behind = Double(event.timestamp - min(ts, event.timestamp)) / 1e6
            sink(.anomaly(original, "out of time order: read at or before line \(line), \(String(format: "%.3f", behind)) ms after newer events, beyond the reorder window", applied: false))
        }
    }

    /// Runs `body` with the state of the event's device (none: the event is dropped, as an
    /// event without a device cannot be placed). `dmaEvent`: the event is of the dma system.
    @inline(__always)
    private func onDevice(_ event: DMAEvent, dmaEvent: Bool = true, _ body: (DeviceState) -> Void) {
        guard let name = event.device else { return }
        let dev = device(name, for: event)
        if dmaEvent { sawDMAEvents = true }
        dev._withUnsafeGuaranteedRef(body)
    }

    /// The state of a dma event's device, unretained (the model holds it); nil without a device.
    @inline(__always)
    private func dmaDevice(of event: borrowing DMAEvent) -> Unmanaged<DeviceState>? {
        guard let name = event.device else { return nil }
        sawDMAEvents = true
        return device(name, for: copy event)
    }

    private func bounce(_ b: BounceEvent, _ event: DMAEvent, _ dev: DeviceState) {
        dev.profile.bounces += 1
        if dev.profile.firstBounceTimestamp == nil { dev.profile.firstBounceTimestamp = event.timestamp }
        let withinMask = b.size > 0 && b.dmaMask != 0 && b.origAddr &+ (b.size - 1) <= b.dmaMask
        if !b.forced, withinMask, b.origAddr % Self.cacheLine != 0 || b.size % Self.cacheLine != 0 {
            dev.profile.unalignedKmallocBounces += 1
        }
        dev.pendingBounces[b.origAddr] = event.timestamp
        if dev.pendingBounces.count > 4096 { dev.pendingBounces.removeAll() }
    }

    // MARK: - The recent past

    /// Keys of sg tombstones are tagged so they never collide with dma addresses.
    static let sgKeyTag: UInt64 = 0x5347_0000_0000_0000

    /// Remembers a release (or a failed map) of `key`, stamped with the mapping ids issued so far.
    func remember(_ dev: DeviceState, _ t: consuming Tombstone, key: UInt64) {
        t.sequence = nextID
        dev.tombstones.set(key, consume t)
    }

    /// The key a mapping's release is remembered under.
    @inline(__always)
    static func tombstoneKey(_ m: StreamingMapping) -> UInt64 {
        m.isScatterGather ? m.physAddr ^ sgKeyTag : m.dmaAddr
    }

    /// A map of an address makes its unmapped tombstone stale: an unmap that then matches
    /// nothing is not a second unmap of the old mapping. That is not written down on every map
    /// (a table lookup, a twentieth of the replay); `unmatched` asks instead whether a mapping
    /// made after the tombstone holds its key. One that stops being live without a release
    /// (superseded, or pushed out by a reused address) could not answer then: it forgets the
    /// tombstone here, on its way out.
    func forgetOlderTombstone(_ dev: DeviceState, leaving m: StreamingMapping) {
        let key = Self.tombstoneKey(m)
        if let t = dev.tombstones.get(key), t.sequence < m.id { dev.tombstones.removeUnmapped(key) }
    }

    /// A live mapping with this tombstone key, made after `sequence`.
    func liveMapping(_ dev: DeviceState, key: UInt64, madeAfter sequence: Int) -> Bool {
        func fits(_ m: StreamingMapping) -> Bool { m.id > sequence && Self.tombstoneKey(m) == key }
        return dev.byDMA.containing(key).contains { fits($0.value) }
            || dev.sgByFirstPhys[key ^ Self.sgKeyTag]?.contains(where: fits) == true
    }

    func unmatched(_ dev: DeviceState, key: UInt64, address: UInt64?) -> UnmatchedContext {
        if address == Self.mappingError {
            return .mappingError(failedMap: dev.tombstones.get(Self.mappingError)?.event)
        }
        if let t = dev.tombstones.get(key), t.reason == .mapFailed || !liveMapping(dev, key: key, madeAfter: t.sequence) {
            switch t.reason {
            case .mapFailed: return .mappingError(failedMap: t.event)
            case .unmapped: return .alreadyReleased(release: t.event, original: t.original)
            }
        }
        let near = address.flatMap { dev.byDMA.containing($0).first?.value }
        return .neverSeen(mayPredateTrace: !historyComplete(dev.profile.name), near: near)
    }

    func newID() -> Int {
        nextID += 1
        return nextID
    }
}

extension StreamingMapping.Function {
    @inline(__always)
    var isMMIOMapping: Bool {
        if case .single(let api) = self { return api.isMMIO }
        return false
    }
}

/// Each CPU's latest event time, set on every event: raw storage for the CPU numbers machines
/// have (a hash table here cost 60 instructions an event, an array of optionals 43: its
/// uniqueness and bounds checks), a table for what a corrupted record may claim.
final class LastTimestampOfCPU {
    private static let direct = 1024
    /// 0 for a CPU not seen yet, else its time + 1 (a time of UInt64.max is kept as max - 1:
    /// one nanosecond at the end of time changes no gap).
    private let recent = UnsafeMutablePointer<UInt64>.allocate(capacity: direct)
    private var other = AddressMap<UInt64>()

    init() { recent.initialize(repeating: 0, count: Self.direct) }
    deinit { recent.deallocate() }

    subscript(cpu: Int32) -> UInt64? {
        get {
            let i = Int(UInt32(bitPattern: cpu))
            if i < Self.direct { return recent[i] == 0 ? nil : recent[i] - 1 }
            return other[UInt64(i)]
        }
        set {
            let i = Int(UInt32(bitPattern: cpu))
            guard i < Self.direct else { other[UInt64(i)] = newValue; return }
            recent[i] = newValue.map { $0 == .max ? $0 : $0 + 1 } ?? 0
        }
    }
}
