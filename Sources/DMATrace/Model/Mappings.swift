/// One live (or just ended) streaming mapping, like kernel/dma/debug.c's
/// dma_debug_entry: one record type for single and scatter-gather mappings.
public final class StreamingMapping {
    public enum Function: Sendable, Hashable, CustomStringConvertible {
        case single(SingleMapAPI)
        case scatterGather

        public var description: String {
            switch self {
            case .single(.page): "dma_map_page/single"
            case .single(.phys): "dma_map_phys"
            case .single(.resource): "dma_map_resource"
            case .single(.mmio): "dma_map_phys(MMIO)"
            case .scatterGather: "dma_map_sg"
            }
        }
    }

    public struct Segment: Sendable, Hashable {
        public var dmaAddr: UInt64
        public var physAddr: UInt64
        public var length: UInt64
    }

    public enum Owner: Sendable { case device, cpu }

    public let id: Int
    public let device: String
    public let function: Function
    public let direction: DMADirection?
    public let attrs: DMAAttributes
    public let segments: [Segment]
    /// Physical ranges of the input entries (sg) or of the buffer (single).
    public let physRanges: [Segment]
    public let inputEntries: Int
    public let truncated: Bool
    public let mapEvent: DMAEvent
    /// swiotlb bounced (part of) the buffer: the device sees a copy.
    public internal(set) var bounced: Bool
    /// Events after the map (syncs, bounces), bounded; `history` adds the map itself.
    var laterEvents: [DMAEvent] = []
    public var history: [DMAEvent] { [mapEvent] + laterEvents }
    public internal(set) var owner: Owner = .device
    /// Byte ranges (dma address space) the CPU took with sync_for_cpu and has not given back.
    var cpuOwnedRanges: [Range<UInt64>] = []
    public internal(set) var syncsForCPU = 0
    public internal(set) var syncsForDevice = 0
    /// Overlaps seen while this mapping's liveness was in doubt; confirmed when it is unmapped.
    var pendingOverlaps: [StreamingMapping] = []
    /// Set once the mapping was superseded on a device that may skip unmaps.
    var superseded = false
    /// The device's state, for rules that judge by what the device shows (unowned:
    /// the model holds both, and a device outlives its mappings).
    unowned var deviceState: DMAModel.DeviceState!

    static let historyLimit = 24

    init(id: Int, device: String, function: Function, direction: DMADirection?, attrs: DMAAttributes,
         segments: [Segment], physRanges: [Segment], inputEntries: Int, truncated: Bool, mapEvent: DMAEvent,
         bounced: Bool) {
        self.id = id
        self.device = device
        self.function = function
        self.direction = direction
        self.attrs = attrs
        self.segments = segments
        self.physRanges = physRanges
        self.inputEntries = inputEntries
        self.truncated = truncated
        self.mapEvent = mapEvent
        self.bounced = bounced
    }

    public var dmaAddr: UInt64 { segments.first?.dmaAddr ?? 0 }
    public var physAddr: UInt64 { physRanges.first?.physAddr ?? 0 }
    public var size: UInt64 { segments.reduce(0) { $0 &+ $1.length } }
    public var mappedAt: UInt64 { mapEvent.timestamp }
    public var isScatterGather: Bool { function == .scatterGather }
    public var deviceMayWrite: Bool { direction?.deviceMayWrite ?? true }
    /// What the trace shows about the mapping's device, now.
    public var deviceProfile: DeviceProfile { deviceState.profile }

    func record(_ event: DMAEvent) {
        if laterEvents.count >= Self.historyLimit - 1 {
            // Keep the map itself and the most recent events.
            laterEvents.removeFirst()
        }
        laterEvents.append(event)
    }

    /// The segment containing a dma address, if any.
    func segment(containing addr: UInt64) -> Segment? {
        segments.first { addr >= $0.dmaAddr && addr - $0.dmaAddr < $0.length }
    }
}

/// A dma_alloc_* result: coherent memory, pages, or an sg table.
public final class CoherentAllocation {
    public let id: Int
    public let device: String
    public let api: AllocAPI
    public let cpuAddr: TracedPointer
    public let dmaAddr: UInt64
    public let size: UInt64
    public let attrs: DMAAttributes
    /// The physical memory behind it, when the trace shows it (direct path,
    /// an iommu:map for its IOVA, or the sg table's pages).
    public internal(set) var physRanges: [StreamingMapping.Segment]
    /// `physRanges` is the dma address taken as physical (dma-direct assumed, not shown).
    var physAssumed = false
    /// Allocated before the device's first streaming map: probe-time rings and queues.
    var beforeFirstMap = false
    public let allocEvent: DMAEvent
    public internal(set) var history: [DMAEvent]

    init(id: Int, device: String, event: AllocEvent, allocEvent: DMAEvent, physRanges: [StreamingMapping.Segment]) {
        self.id = id
        self.device = device
        api = event.api
        cpuAddr = event.cpuAddr
        dmaAddr = event.dmaAddr
        size = event.size
        attrs = event.attrs
        self.physRanges = physRanges
        self.allocEvent = allocEvent
        history = [allocEvent]
    }
}

/// What happened to an address after its mapping ended: kept, bounded, so a
/// later unmap or sync of it can be told apart from one never mapped.
struct Tombstone {
    enum Reason { case unmapped, mapFailed }
    let reason: Reason
    let event: DMAEvent
    /// The released mapping (a reference: its map event is not copied again).
    let mapping: StreamingMapping?
    let start: UInt64
    let length: UInt64
    let function: StreamingMapping.Function?
}

/// Recently released addresses of one device, in a fixed direct-mapped table:
/// no hashing of Swift's seeded kind, no eviction queue. A collision forgets the
/// older entry, which can only hide a double unmap, never invent one.
struct TombstoneCache {
    static let slots = 4096
    private var keys: [UInt64] = []
    private var values: [Tombstone?] = []

    private static func slot(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 52)
    }

    func get(_ key: UInt64) -> Tombstone? {
        guard !keys.isEmpty else { return nil }
        let i = Self.slot(key)
        return keys[i] == key ? values[i] : nil
    }

    mutating func set(_ key: UInt64, _ t: Tombstone) {
        if keys.isEmpty {
            keys = [UInt64](repeating: 0, count: Self.slots)
            values = [Tombstone?](repeating: nil, count: Self.slots)
        }
        let i = Self.slot(key)
        keys[i] = key
        values[i] = t
    }

    mutating func remove(_ key: UInt64) {
        guard !keys.isEmpty else { return }
        let i = Self.slot(key)
        if keys[i] == key { values[i] = nil }
    }
}
