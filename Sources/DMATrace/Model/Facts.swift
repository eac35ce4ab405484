/// What the model observed while replaying the trace. The model states
/// facts; rules (Rules/) decide which facts are bugs and how bad they are.
public enum ModelFact {
    /// A streaming mapping became live.
    case mapped(StreamingMapping)
    /// A map returned DMA_MAPPING_ERROR (or an sg map produced no segment).
    case mapFailed(DMAEvent)
    /// Two live streaming mappings cover the same physical bytes.
    case physicalOverlap(new: StreamingMapping, existing: StreamingMapping, bytes: Range<UInt64>)
    /// A new mapping got a dma address still covered by a live mapping of the same device
    /// on a translated path (IOMMU or bounce), where the kernel should never hand it out twice.
    case dmaAddressReuse(new: StreamingMapping, existing: StreamingMapping)
    /// A streaming mapping covers memory of a live coherent allocation.
    case overlapsCoherent(StreamingMapping, CoherentAllocation, bytes: Range<UInt64>)
    /// Two live mappings without common bytes share a cache line.
    case sharedCacheLine(new: StreamingMapping, neighbor: StreamingMapping, line: UInt64)
    /// An unmap matched a live mapping (the rule compares parameters).
    case unmapped(StreamingMapping, unmap: DMAEvent, size: UInt64?, direction: DMADirection?,
                  function: StreamingMapping.Function, entries: Int?)
    /// A dma_unmap_sg released a list whose entry `index` differs from the mapped list's
    /// (debug.c checks every entry: "frees DMA memory with different CPU address").
    case unmapSGEntryMismatch(StreamingMapping, unmap: DMAEvent, index: Int, mapped: UInt64, unmapped: UInt64)
    /// An unmap matched nothing live.
    case unmapWithoutMapping(DMAEvent, UnmatchedContext)
    /// A sync matched a live mapping.
    case synced(StreamingMapping, SyncObservation)
    /// A sync matched nothing live.
    case syncWithoutMapping(DMAEvent, UnmatchedContext)
    case allocated(CoherentAllocation)
    case freed(CoherentAllocation, free: DMAEvent, FreeEvent)
    case freeWithoutAllocation(DMAEvent, UnmatchedContext)
    case iommuFault(DMAEvent, IOMMUFaultEvent)
    /// The event contradicts itself; `applied` tells whether the model still used it.
    case anomaly(DMAEvent, String, applied: Bool)
    case eventsLost(LostGap)
}

public enum UnmatchedContext {
    /// Nothing in the trace ever covered the address.
    case neverSeen(mayPredateTrace: Bool, near: StreamingMapping?)
    /// The address was unmapped or freed before, and not mapped since.
    case alreadyReleased(release: DMAEvent, original: DMAEvent?)
    /// The address is DMA_MAPPING_ERROR, or the memory of an sg map that failed.
    case mappingError(failedMap: DMAEvent?)
    /// Only a near match is live (same first page, other entries or count), and events were lost
    /// before the unmap: its real partner may be the lost map.
    case partnerMayBeLost(gap: LostGap, near: StreamingMapping)
}

public struct SyncObservation {
    public var event: DMAEvent
    public var sync: SyncEvent
    /// Synced bytes (dma addresses) that fall outside the mapping.
    public var outOfRange: Bool
    /// For sync_for_cpu: part of the range was already CPU-owned (no sync_for_device since).
    public var alreadyCPUOwned: Bool
    public var entriesMismatch: (mapped: Int, synced: Int)?
}

public struct LostGap: Sendable, Codable {
    public var cpu: Int32
    /// Last record seen on that CPU before the gap (nil: the gap may reach back to the trace's start).
    public var from: UInt64?
    public var to: UInt64
    public var count: UInt64?
}

extension ModelFact {
    /// The fact's case without its payload: rules subscribe by kind, so each
    /// fact reaches only the rules that judge it.
    ///
    /// `.unmapped` comes in four kinds: every unmap makes one, and most rules of unmaps compare
    /// one parameter of one family (an sg count, a dma_free_* size), so routing spares each
    /// unmap the calls that would return at once.
    /// - `unmappedAsMapped`: a dma_unmap_single/page/resource or dma_unmap_sg that gives every
    ///   parameter the trace shows as the map had it (function, direction, size or entry count);
    /// - `unmappedSingle`, `unmappedSG`: the other unmaps of those families;
    /// - `unmappedByFree`: a dma_free_* of memory the model tracks as a mapping, always.
    /// `anyUnmap` subscribes to all four; a rule that compares parameters needs only the others.
    public enum Kind: Int, CaseIterable, Sendable {
        case mapped, mapFailed, physicalOverlap, dmaAddressReuse, overlapsCoherent, sharedCacheLine
        case unmappedAsMapped, unmappedSingle, unmappedSG, unmappedByFree
        case unmapSGEntryMismatch, unmapWithoutMapping, synced, syncWithoutMapping
        case allocated, freed, freeWithoutAllocation, iommuFault, anomaly, eventsLost

        public static let anyUnmap: Set<Kind> = [.unmappedAsMapped, .unmappedSingle, .unmappedSG, .unmappedByFree]
        /// The unmaps whose parameters may differ from their map's.
        public static let unmapsNotAsMapped: Set<Kind> = [.unmappedSingle, .unmappedSG, .unmappedByFree]
    }

    public var kind: Kind {
        switch self {
        case .mapped: .mapped
        case .mapFailed: .mapFailed
        case .physicalOverlap: .physicalOverlap
        case .dmaAddressReuse: .dmaAddressReuse
        case .overlapsCoherent: .overlapsCoherent
        case .sharedCacheLine: .sharedCacheLine
        case .unmapped(let m, _, let size, let direction, let function, let entries):
            switch function {
            case .allocation: .unmappedByFree
            case .single where function == m.function && direction == m.direction
                && (size == nil || size == m.segments.first?.length): .unmappedAsMapped
            case .scatterGather where function == m.function && direction == m.direction
                && (entries == nil || entries == m.inputEntries): .unmappedAsMapped
            case .single: .unmappedSingle
            case .scatterGather: .unmappedSG
            }
        case .unmapSGEntryMismatch: .unmapSGEntryMismatch
        case .unmapWithoutMapping: .unmapWithoutMapping
        case .synced: .synced
        case .syncWithoutMapping: .syncWithoutMapping
        case .allocated: .allocated
        case .freed: .freed
        case .freeWithoutAllocation: .freeWithoutAllocation
        case .iommuFault: .iommuFault
        case .anomaly: .anomaly
        case .eventsLost: .eventsLost
        }
    }
}
