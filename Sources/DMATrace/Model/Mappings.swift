/// One live (or just ended) streaming mapping, like kernel/dma/debug.c's
/// dma_debug_entry: one record type for single and scatter-gather mappings.
public final class StreamingMapping {
    public enum Function: Sendable, Hashable, CustomStringConvertible {
        case single(SingleMapAPI)
        case scatterGather
        /// dma_alloc_pages / dma_alloc_noncoherent / dma_alloc_noncontiguous (6.13+ events):
        /// memory the driver owns like a streaming mapping and must sync (dma-api.rst Part II).
        case allocation(AllocAPI)

        public var description: String {
            switch self {
            case .single(.page): "dma_map_page/single"
            case .single(.phys): "dma_map_phys"
            case .single(.resource): "dma_map_resource"
            case .single(.mmio): "dma_map_phys(MMIO)"
            case .scatterGather: "dma_map_sg"
            case .allocation(.pages): "dma_alloc_pages/noncoherent"
            case .allocation(.sgt): "dma_alloc_noncontiguous"
            case .allocation(.coherent): "dma_alloc_coherent"
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
    /// The device's name: its state's, which the mapping holds anyway (a String of its own was
    /// one more reference to take and drop for every mapping).
    public var device: String { deviceState.profile.name }
    public let function: Function
    public let direction: DMADirection?
    public let attrs: DMAAttributes
    public let segments: SegmentList
    /// Physical ranges the mapping covers, each entry with its real DMA length where the trace
    /// shows it (sg: the mapped segments, or iommu:map events behind a merged segment).
    public internal(set) var physRanges: SegmentList
    /// The physical address of every input entry the trace kept (dma_unmap_sg is checked against
    /// them); empty for single mappings, whose one range says it (no array per mapping).
    public var entryPhys: [UInt64] { entryPhysIfSG ?? [] }
    /// nil for a single mapping: an empty array cost a release call for every mapping.
    private let entryPhysIfSG: [UInt64]?
    public let inputEntries: Int
    public let truncated: Bool
    public let mapEvent: DMAEvent
    /// swiotlb bounced (part of) the buffer: the device sees a copy.
    public internal(set) var bounced: Bool
    public internal(set) var owner: Owner = .device
    public internal(set) var syncsForCPU = 0
    public internal(set) var syncsForDevice = 0
    /// Mapped with SKIP_CPU_SYNC over a live coherent allocation (a dma_get_sgtable export).
    public internal(set) var sharesCoherentMemory = false
    /// Set once the mapping was superseded on a device that may skip unmaps.
    var superseded = false
    /// Where `register` put a one-range mapping in the device's dma index and the physical
    /// index, for `removeLive` to take it out without looking it up again.
    var dmaHandle: IntervalIndex<StreamingMapping>.Handle?
    var physHandle: IntervalIndex<StreamingMapping>.Handle?

    /// What only some mappings need (syncs, doubtful overlaps, sharing), kept apart: a mapping
    /// that is only mapped and unmapped allocates and releases none of it.
    private final class Extras {
        var laterEvents: [DMAEvent] = []
        var cpuOwnedRanges: [Range<UInt64>] = []
        var pendingOverlaps: [StreamingMapping] = []
        var sharedWith: [StreamingMapping] = []
    }
    private var extras: Extras?
    private var madeExtras: Extras {
        if let extras { return extras }
        let e = Extras()
        extras = e
        return e
    }

    /// Events after the map (syncs, bounces), bounded; `history` adds the map itself.
    var laterEvents: [DMAEvent] {
        get { extras?.laterEvents ?? [] }
        _modify { yield &madeExtras.laterEvents }
    }
    public var history: [DMAEvent] { [mapEvent] + laterEvents }
    /// Byte ranges (dma address space) the CPU took with sync_for_cpu and has not given back.
    var cpuOwnedRanges: [Range<UInt64>] {
        get { extras?.cpuOwnedRanges ?? [] }
        _modify { yield &madeExtras.cpuOwnedRanges }
    }
    /// Overlaps seen while this mapping's liveness was in doubt; confirmed when it is unmapped.
    var pendingOverlaps: [StreamingMapping] {
        get { extras?.pendingOverlaps ?? [] }
        _modify { yield &madeExtras.pendingOverlaps }
    }
    /// Mapped with SKIP_CPU_SYNC over memory already mapped (for this or another device): the
    /// dma-buf sharing pattern. The exporter's mappings (a few), whose syncs may cover this one.
    public internal(set) var sharedWith: [StreamingMapping] {
        get { extras?.sharedWith ?? [] }
        _modify { yield &madeExtras.sharedWith }
    }
    /// The device's state, for rules that judge by what the device shows. Strong: reading
    /// an unowned reference took and dropped a strong one (two atomic operations) on every
    /// unmap; the model breaks the cycle through the device's indexes when it goes.
    let deviceState: DMAModel.DeviceState

    static let historyLimit = 24

    init(id: Int, deviceState: DMAModel.DeviceState, function: Function, direction: DMADirection?, attrs: DMAAttributes,
         segments: SegmentList, physRanges: SegmentList, entryPhys: [UInt64]?, inputEntries: Int, truncated: Bool,
         mapEvent: DMAEvent, bounced: Bool) {
        self.id = id
        self.deviceState = deviceState
        self.function = function
        self.direction = direction
        self.attrs = attrs
        self.segments = segments
        self.physRanges = physRanges
        entryPhysIfSG = entryPhys
        self.inputEntries = inputEntries
        self.truncated = truncated
        self.mapEvent = mapEvent
        self.bounced = bounced
    }

    public var dmaAddr: UInt64 { segments.first?.dmaAddr ?? 0 }
    public var physAddr: UInt64 { entryPhysIfSG?.first ?? physRanges.first?.physAddr ?? 0 }
    public var size: UInt64 { segments.totalLength }
    public var mappedAt: UInt64 { mapEvent.timestamp }
    public var isScatterGather: Bool { function == .scatterGather }
    /// Owned memory from dma_alloc_pages / _noncontiguous rather than a map.
    public var isAllocation: Bool { if case .allocation = function { return true }; return false }
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
    /// `position`: where the address stands in the sync's list. A driver syncs the list it
    /// mapped, so entry i is segment i; trying it first keeps a 100,000-entry sync linear.
    func segment(containing addr: UInt64, position: Int? = nil) -> Segment? {
        func holds(_ s: Segment) -> Bool { addr >= s.dmaAddr && addr - s.dmaAddr < s.length }
        if let position, segments.indices.contains(position), holds(segments[position]) { return segments[position] }
        return segments.first(where: holds)
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

/// A mapping's segments: the first inline, the rest (sg lists) in an array, so a single
/// mapping, by far the most common, allocates nothing for them. No array at all rather than an
/// empty one: every copy of the list (each loop over a mapping's segments) retained and
/// released the shared empty array.
public struct SegmentList: RandomAccessCollection, ExpressibleByArrayLiteral, Sendable {
    public typealias Segment = StreamingMapping.Segment
    private let head: Segment
    private let tail: [Segment]?
    public let count: Int

    public init(_ segments: [Segment]) {
        count = segments.count
        head = segments.first ?? Segment(dmaAddr: 0, physAddr: 0, length: 0)
        tail = segments.count > 1 ? Array(segments.dropFirst()) : nil
    }

    public init(single segment: Segment) {
        count = 1
        head = segment
        tail = nil
    }

    public init(arrayLiteral segments: Segment...) { self.init(segments) }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(i: Int) -> Segment {
        precondition(i >= 0 && i < count, "segment index out of range")
        return i == 0 ? head : tail![i - 1]
    }

    public var first: Segment? { count > 0 ? head : nil }

    /// The lengths summed (wrapping), without going through the collection: summing a single
    /// mapping's one segment by `reduce` cost ~30 instructions, three times per map/unmap pair.
    /// An empty list's placeholder head has length 0.
    public var totalLength: UInt64 {
        guard let tail else { return head.length }
        return tail.reduce(head.length) { $0 &+ $1.length }
    }
}
