/// The normalized DMA event model: one vocabulary for every kernel generation
/// and every input format. Nothing past Ingest sees a record, a field offset
/// or a kernel version; it sees these types.

/// `enum dma_data_direction`.
public enum DMADirection: UInt8, Sendable, Hashable, Codable, CustomStringConvertible {
    case bidirectional = 0
    case toDevice = 1
    case fromDevice = 2
    case none = 3

    /// Values outside 0...3 happen on kernels before a 6.18 fix (garbage dir
    /// on alloc events) and on corrupted records; they are kept as `nil` by
    /// the decoders rather than guessed.
    @inline(__always)
    public init?(kernelValue: UInt64) {
        guard kernelValue <= 3, let d = DMADirection(rawValue: UInt8(kernelValue)) else { return nil }
        self = d
    }

    public init?(name: String) {
        switch name {
        case "BIDIRECTIONAL", "DMA_BIDIRECTIONAL": self = .bidirectional
        case "TO_DEVICE", "DMA_TO_DEVICE": self = .toDevice
        case "FROM_DEVICE", "DMA_FROM_DEVICE": self = .fromDevice
        case "NONE", "DMA_NONE": self = .none
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .bidirectional: "BIDIRECTIONAL"
        case .toDevice: "TO_DEVICE"
        case .fromDevice: "FROM_DEVICE"
        case .none: "NONE"
        }
    }

    /// Whether the device may write the memory under this direction.
    public var deviceMayWrite: Bool { self == .fromDevice || self == .bidirectional }
    /// Whether the device may read the memory under this direction.
    public var deviceMayRead: Bool { self == .toDevice || self == .bidirectional }
}

/// `DMA_ATTR_*` bits (include/linux/dma-mapping.h).
public struct DMAAttributes: OptionSet, Sendable, Hashable, Codable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let weakOrdering = DMAAttributes(rawValue: 1 << 1)
    public static let writeCombine = DMAAttributes(rawValue: 1 << 2)
    public static let noKernelMapping = DMAAttributes(rawValue: 1 << 4)
    public static let skipCPUSync = DMAAttributes(rawValue: 1 << 5)
    public static let forceContiguous = DMAAttributes(rawValue: 1 << 6)
    public static let allocSinglePages = DMAAttributes(rawValue: 1 << 7)
    public static let noWarn = DMAAttributes(rawValue: 1 << 8)
    public static let privileged = DMAAttributes(rawValue: 1 << 9)
    public static let mmio = DMAAttributes(rawValue: 1 << 10)
    /// The driver declares that the buffer shares cache lines on purpose.
    public static let cachelinesOverlap = DMAAttributes(rawValue: 1 << 11)
    /// The mapping must be coherent (no swiotlb, no cache maintenance); debug.c counts it as
    /// cache-clean like CACHELINES_OVERLAP.
    public static let requireCoherent = DMAAttributes(rawValue: 1 << 12)

    static let names: [(DMAAttributes, String)] = [
        (.weakOrdering, "WEAK_ORDERING"), (.writeCombine, "WRITE_COMBINE"),
        (.noKernelMapping, "NO_KERNEL_MAPPING"), (.skipCPUSync, "SKIP_CPU_SYNC"),
        (.forceContiguous, "FORCE_CONTIGUOUS"), (.allocSinglePages, "ALLOC_SINGLE_PAGES"),
        (.noWarn, "NO_WARN"), (.privileged, "PRIVILEGED"), (.mmio, "MMIO"),
        (DMAAttributes(rawValue: 1 << 11), "CACHELINES_OVERLAP"),
        (DMAAttributes(rawValue: 1 << 12), "REQUIRE_COHERENT"),
        (DMAAttributes(rawValue: 1 << 13), "CC_SHARED"),
        (DMAAttributes(rawValue: 1 << 14), "ALLOC_CC_SHARED"),
    ]

    /// Parses the `__print_flags` rendering: `SKIP_CPU_SYNC|MMIO`, empty, or a hex number.
    public init?(text: Substring) {
        if text.isEmpty { self = []; return }
        if text.hasPrefix("0x"), let v = UInt64(text.dropFirst(2), radix: 16) { self.init(rawValue: v); return }
        var value: UInt64 = 0
        for part in text.split(separator: "|") {
            if let known = Self.names.first(where: { $0.1 == part }) {
                value |= known.0.rawValue
            } else if part.hasPrefix("0x"), let v = UInt64(part.dropFirst(2), radix: 16) {
                value |= v
            } else if part == "CACHE_CLEAN" {
                // Bit 11's earlier name.
                value |= 1 << 11
            }
            // Names a newer kernel added are skipped: dropping SKIP_CPU_SYNC or MMIO
            // along with them would be worse than not knowing one new bit.
        }
        self.init(rawValue: value)
    }

    public var description: String {
        var parts: [String] = []
        var rest = rawValue
        for (flag, name) in Self.names where rawValue & flag.rawValue != 0 {
            parts.append(name)
            rest &= ~flag.rawValue
        }
        if rest != 0 { parts.append("0x" + String(rest, radix: 16)) }
        return parts.joined(separator: "|")
    }
}

/// Which kernel entry point made a single (non-sg) streaming mapping.
public enum SingleMapAPI: String, Sendable, Hashable, Codable {
    /// dma_map_page / dma_map_single (kernels up to 6.17).
    case page
    /// dma_map_phys (6.18 and later), memory.
    case phys
    /// dma_map_resource (up to 6.17), MMIO.
    case resource
    /// dma_map_phys with DMA_ATTR_MMIO (6.18 and later).
    case mmio

    @inline(__always)
    public var isMMIO: Bool { self == .resource || self == .mmio }

    /// The function as the trace's event and attributes name it: dma_map_phys (and its unmap)
    /// with DMA_ATTR_MMIO maps a resource, not memory.
    @inline(__always)
    func resolved(by attrs: DMAAttributes) -> SingleMapAPI {
        self == .phys && attrs.contains(.mmio) ? .mmio : self
    }
}

/// Which allocator produced (or released) device memory.
public enum AllocAPI: String, Sendable, Hashable, Codable {
    /// dma_alloc_coherent / dma_alloc_attrs.
    case coherent
    /// dma_alloc_pages / dma_alloc_noncoherent.
    case pages
    /// dma_alloc_noncontiguous (sg table).
    case sgt
}

/// A kernel call chain, innermost frame first, symbolized when the trace
/// carries kallsyms.
public struct KernelStack: Sendable, Hashable, Codable {
    public var frames: [String]
    /// Per frame, how far the trace's kallsyms puts the next symbol after this frame's
    /// (0: unknown). A module file whose function is longer than that is another build.
    public var symbolSpans: [UInt64]?
    public init(frames: [String], symbolSpans: [UInt64]? = nil) {
        self.frames = frames
        self.symbolSpans = symbolSpans
    }
}

/// A `u64` that the input may not have carried faithfully: text traces hash
/// `%p` values unless the hash-ptr option was off.
public enum TracedPointer: Sendable, Hashable, Codable {
    case value(UInt64)
    /// `%p` hashed (the hash-ptr option): stable within one boot, so unequal hashes still
    /// prove unequal pointers. nil when even the hash is unreadable ("(____ptrval____)").
    case hashed(UInt64?)
    case absent

    public var value: UInt64? { if case .value(let v) = self { return v }; return nil }
}

public struct SingleMapEvent: Sendable, Hashable {
    public var api: SingleMapAPI
    public var physAddr: UInt64
    public var dmaAddr: UInt64
    public var size: UInt64
    public var direction: DMADirection?
    public var attrs: DMAAttributes
}

public struct SingleUnmapEvent: Sendable, Hashable {
    public var api: SingleMapAPI
    public var dmaAddr: UInt64
    public var size: UInt64
    public var direction: DMADirection?
    public var attrs: DMAAttributes
}

public struct SGSegment: Sendable, Hashable {
    public var physAddr: UInt64
    public var dmaAddr: UInt64
    public var length: UInt64
}

public struct SGMapEvent: Sendable, Hashable {
    /// Entries the driver passed in (`nents`).
    public var inputEntries: Int
    /// Segments the mapping produced (`ents`, the return value).
    public var mappedEntries: Int
    /// Physical address of every input entry the trace kept.
    public var physAddrs: [UInt64]
    /// DMA address and length of every mapped segment the trace kept.
    public var dmaAddrs: [UInt64]
    public var lengths: [UInt64]
    /// The kernel capped the arrays (128 entries since 2026).
    public var truncated: Bool
    public var direction: DMADirection?
    public var attrs: DMAAttributes
}

public struct SGMapErrorEvent: Sendable, Hashable {
    public var physAddrs: [UInt64]
    public var error: Int64
    public var direction: DMADirection?
    public var attrs: DMAAttributes
}

public struct SGUnmapEvent: Sendable, Hashable {
    /// PHYSICAL addresses (sg_phys) of the entries, as the kernel traces them.
    public var physAddrs: [UInt64]
    public var direction: DMADirection?
    public var attrs: DMAAttributes
}

public struct SyncEvent: Sendable, Hashable {
    public enum Target: String, Sendable, Hashable, Codable { case cpu, device }
    public var target: Target
    /// True for dma_sync_sg_*, false for dma_sync_single_*.
    public var scatterGather: Bool
    public var dmaAddrs: [UInt64]
    public var lengths: [UInt64]
    public var direction: DMADirection?
}

public struct AllocEvent: Sendable, Hashable {
    public var api: AllocAPI
    public var cpuAddr: TracedPointer
    public var dmaAddr: UInt64
    public var size: UInt64
    public var direction: DMADirection?
    public var attrs: DMAAttributes
    /// For sg-table allocations: the physical pages behind it.
    public var physAddrs: [UInt64]
    /// dma_alloc_sgt_err: the allocation failed.
    public var failed: Bool
}

public struct FreeEvent: Sendable, Hashable {
    public var api: AllocAPI
    public var cpuAddr: TracedPointer
    public var dmaAddr: UInt64
    public var size: UInt64
    public var direction: DMADirection?
    public var attrs: DMAAttributes
    public var physAddrs: [UInt64]
}

public struct BounceEvent: Sendable, Hashable {
    /// The ORIGINAL physical address of the buffer that was bounced.
    public var origAddr: UInt64
    public var size: UInt64
    public var dmaMask: UInt64
    public var forced: Bool
}

public struct IOMMUMapEvent: Sendable, Hashable {
    public var iova: UInt64
    public var physAddr: UInt64
    public var size: UInt64
}

public struct IOMMUUnmapEvent: Sendable, Hashable {
    public var iova: UInt64
    public var size: UInt64
    public var unmappedSize: UInt64
}

public struct IOMMUFaultEvent: Sendable, Hashable {
    public var driver: String
    public var iova: UInt64
    public var flags: Int64
}

public struct IOMMUGroupEvent: Sendable, Hashable {
    public enum Change: String, Sendable, Hashable, Codable { case add, remove, attach }
    public var change: Change
    public var groupID: Int64?
}

/// What one trace record says, with kind-specific payloads.
public enum DMAEventKind: Sendable, Hashable {
    case map(SingleMapEvent)
    case unmap(SingleUnmapEvent)
    case mapSG(SGMapEvent)
    case mapSGError(SGMapErrorEvent)
    case unmapSG(SGUnmapEvent)
    case sync(SyncEvent)
    case alloc(AllocEvent)
    case free(FreeEvent)
    case bounce(BounceEvent)
    case iommuMap(IOMMUMapEvent)
    case iommuUnmap(IOMMUUnmapEvent)
    case iommuFault(IOMMUFaultEvent)
    case iommuGroup(IOMMUGroupEvent)
    /// The ring buffer dropped records on `cpu` just before this point.
    /// `count` is nil when the kernel had no room to say how many.
    case lostEvents(count: UInt64?)
    /// trace_marker / trace_printk text.
    case marker(String)
    /// An event of the dma, swiotlb or iommu systems this tool does not model.
    case unknown(name: String)
    /// A text line that came too far out of time order to be put back in place: its own kind
    /// and time, and the line the reader had reached (the event's own line or a few after it,
    /// as stacks are waited for); the event carrying it is stamped where it was read.
    indirect case outOfOrder(DMAEventKind, timestamp: UInt64, line: Int)
}

/// One normalized event.
///
/// A value, stored behind one reference: the model keeps events in histories,
/// tombstones and facts, and every rule that looks at a fact binds its events, so a copy
/// must cost a retain, not the ~140 bytes and five references of the fields. Setting a
/// field (rare: ingest attaching a stack) writes in place when nothing else holds the
/// storage, as an array does, and makes a new storage otherwise.
public struct DMAEvent: Sendable, Hashable {
    /// The event's fields as one value: made, copied, overwritten and compared whole.
    private struct Fields: Hashable {
        var timestamp: UInt64
        var cpu: Int32
        var pid: Int32
        var task: String
        var device: String?
        var kind: DMAEventKind
        var stack: KernelStack?
    }

    /// Written only through a uniquely held reference (`isKnownUniquelyReferenced`, the
    /// copy-on-write rule of the standard library's buffers), so no two threads ever see it
    /// change: `EventRecycler` overwrites a storage only after every event that shared it is gone.
    private final class Storage: @unchecked Sendable {
        var fields: Fields
        init(_ fields: consuming Fields) { self.fields = fields }
    }

    private var storage: Storage

    public init(timestamp: UInt64, cpu: Int32, pid: Int32, task: String, device: String?,
                kind: DMAEventKind, stack: KernelStack? = nil) {
        storage = Storage(Fields(timestamp: timestamp, cpu: cpu, pid: pid, task: task, device: device, kind: kind,
                                 stack: stack))
    }

    /// The storage, made this value's own: itself when no other value holds it.
    private mutating func ownStorage() -> Storage {
        if !isKnownUniquelyReferenced(&storage) { storage = Storage(storage.fields) }
        return storage
    }

    /// Becomes a new event, in the storage it holds if no other value holds that storage.
    /// Returns whether it could.
    fileprivate mutating func become(timestamp: UInt64, cpu: Int32, pid: Int32, task: consuming String,
                                     device: consuming String?, kind: consuming DMAEventKind) -> Bool {
        guard isKnownUniquelyReferenced(&storage) else {
            storage = Storage(Fields(timestamp: timestamp, cpu: cpu, pid: pid, task: task, device: device, kind: kind,
                                     stack: nil))
            return false
        }
        // Field by field: assigning a whole new value destroyed the old one through the generic
        // outlined destroy and copied all 136 bytes (~110 instructions an event; this, ~80).
        let s = storage
        s.fields.timestamp = timestamp
        s.fields.cpu = cpu
        s.fields.pid = pid
        s.fields.task = task
        s.fields.device = device
        s.fields.kind = kind
        if s.fields.stack != nil { s.fields.stack = nil }
        return true
    }

    /// Nanoseconds, in the trace's clock.
    public var timestamp: UInt64 {
        get { storage.fields.timestamp }
        set { ownStorage().fields.timestamp = newValue }
    }
    public var cpu: Int32 {
        get { storage.fields.cpu }
        set { ownStorage().fields.cpu = newValue }
    }
    public var pid: Int32 {
        get { storage.fields.pid }
        set { ownStorage().fields.pid = newValue }
    }
    public var task: String {
        get { storage.fields.task }
        set { ownStorage().fields.task = newValue }
    }
    /// `dev_name()` of the device; nil for events that have none
    /// (iommu map/unmap, lost events, markers).
    public var device: String? {
        get { storage.fields.device }
        set { ownStorage().fields.device = newValue }
    }
    /// Read in place: a copy of the enum (an outlined switch over its cases) cost ~80
    /// instructions on every event the replay looked at.
    public var kind: DMAEventKind {
        _read { yield storage.fields.kind }
        set { ownStorage().fields.kind = newValue }
    }
    public var stack: KernelStack? {
        get { storage.fields.stack }
        set { ownStorage().fields.stack = newValue }
    }

    public var seconds: Double { Double(timestamp) / 1e9 }

    public static func == (a: DMAEvent, b: DMAEvent) -> Bool {
        a.storage === b.storage || a.storage.fields == b.storage.fields
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(storage.fields) }
}

/// Printed, dumped and shown in test failures with its fields, as a plain struct would be:
/// the storage reference alone says nothing.
extension DMAEvent: CustomReflectable {
    public var customMirror: Mirror {
        Mirror(self, children: ["timestamp": timestamp, "cpu": cpu, "pid": pid, "task": task, "device": device as Any,
                                "kind": kind, "stack": stack as Any], displayStyle: .struct)
    }
}

/// Makes the decoder's events in the storage of events the analysis has let go of.
///
/// Nearly every event dies young: an unmap and its map are released once the address is
/// mapped again. Freed by the replay thread, each one's storage went back to the allocator of
/// the thread that decoded it (a remote free: ~320 instructions on the replay thread, its
/// bottleneck, for every event). The recycler keeps the storage of the last `capacity` events
/// it made; when it comes round to one again and no event holds it any more (the replay's
/// last release left only the recycler's reference), it writes the new event there. A storage
/// still held (a live mapping's map event, a tombstone, a finding's history) is left to its
/// holders and replaced by a new one.
struct EventRecycler {
    /// More than the events in flight between the decoder and the replay (`EventPipe`:
    /// 8 queued batches of 2,048, one filling, one replaying), so a storage comes round again
    /// only after the replay has seen its event.
    static let capacity = 32768
    private var ring: ContiguousArray<DMAEvent> = []
    private var next = 0
    private(set) var reused = 0

    init() {}

    mutating func make(timestamp: UInt64, cpu: Int32, pid: Int32, task: consuming String, device: consuming String?,
                       kind: consuming DMAEventKind) -> DMAEvent {
        if ring.count < Self.capacity {
            let event = DMAEvent(timestamp: timestamp, cpu: cpu, pid: pid, task: task, device: device, kind: kind)
            ring.append(event)
            return event
        }
        let i = next
        next = i + 1 == Self.capacity ? 0 : i + 1
        if ring[i].become(timestamp: timestamp, cpu: cpu, pid: pid, task: task, device: device, kind: kind) { reused += 1 }
        return ring[i]
    }
}
