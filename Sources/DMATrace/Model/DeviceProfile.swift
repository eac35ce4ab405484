/// What the trace shows about one device, and therefore what can be checked.
public struct DeviceProfile: Sendable, Codable {
    public enum Path: String, Sendable, Codable {
        case direct = "dma-direct"
        /// dma-direct with a constant bus offset (dma = phys + C): not an IOMMU.
        case busOffset = "dma-direct with bus offset"
        case iommu = "iommu"
        case bounce = "swiotlb bounce"
        case mixed = "mixed"
        case unknown = "unknown"
    }

    public enum Coherence: String, Sendable, Codable {
        /// Syncs of unbounced mappings reach the tracepoint: the kernel does cache maintenance.
        case nonCoherent = "non-coherent"
        /// Many mappings, no sync event: either the kernel skips syncs before the tracepoint
        /// (dma_skip_sync on coherent dma-direct / iommu-dma) or the driver never syncs.
        case coherent = "no syncs seen"
        /// The architecture makes device DMA cache-coherent (x86).
        case coherentByArchitecture = "coherent"
        case unknown = "unknown"
    }

    public var name: String
    public var firstTimestamp: UInt64 = 0
    public var lastTimestamp: UInt64 = 0
    /// The device's first event was an allocation or an IOMMU group change:
    /// the trace saw the driver start, so nothing it unmaps can predate the trace.
    public var historyStartsInTrace = false
    public var maps: UInt64 = 0
    public var sgMaps: UInt64 = 0
    public var unmaps: UInt64 = 0
    public var syncsForCPU: UInt64 = 0
    public var syncsForDevice: UInt64 = 0
    public var allocs: UInt64 = 0
    public var frees: UInt64 = 0
    public var failedMaps: UInt64 = 0
    public var bounces: UInt64 = 0
    public var bytesMapped: UInt64 = 0
    public var liveMappings: Int = 0
    public var liveBytes: UInt64 = 0
    public var liveCoherentBytes: UInt64 = 0
    public var peakLiveMappings: Int = 0
    /// Live dma_alloc_* memory of every kind (coherent, pages, noncontiguous).
    public var liveAllocations: Int = 0
    /// Of those, dma_alloc_pages / _noncontiguous memory (owned like mappings).
    public var liveOwnedAllocations: Int = 0
    public var peakLiveAllocations: Int = 0
    public var directSegments: UInt64 = 0
    /// Segments whose dma address is neither the physical address nor a bounce slot.
    public var translatedSegments: UInt64 = 0
    public var iommuBackedSegments: UInt64 = 0
    public var bouncedMappings: UInt64 = 0
    public var syncsOfUnbouncedMappings: UInt64 = 0
    /// Of those, the ones before the device's first swiotlb bounce: swiotlb_tbl_map_single()
    /// clears dev->dma_skip_sync, so only syncs before any bounce speak for non-coherence.
    public var syncsOfUnbouncedBeforeBounce: UInt64 = 0
    public var firstBounceTimestamp: UInt64?
    /// Bounces that were neither forced nor needed by the DMA mask, of a buffer that does not fill
    /// whole cache lines: DMA_BOUNCE_UNALIGNED_KMALLOC bounces those only for non-coherent devices
    /// (dma_kmalloc_needs_bounce()).
    public var unalignedKmallocBounces: UInt64 = 0
    /// The traced kernel's architecture, as far as the trace shows it (shared by all devices).
    public var architecture: ArchitectureFact?
    /// dma = phys + this constant on every translated segment, with no iommu:map behind them.
    public var busOffset: UInt64?
    /// The device left its IOMMU group (remove_device_from_group): the device went away.
    public var removedFromGroupAt: UInt64?
    /// False when the trace has no dma events (a kernel before 6.12): only bounces are known.
    public var dmaEventsTraced = true
    /// Probe-time coherent allocations freed after the device's last streaming map.
    public var probeAllocationsFreedAfterLastMap: UInt64 = 0
    /// Mappings abandoned without unmap and replaced by a new mapping of the same memory.
    public var supersededMappings: UInt64 = 0
    public var firstMapTimestamp: UInt64?
    public var lastMapTimestamp: UInt64?
    public var lastFreeTimestamp: UInt64?
    /// Coherent allocations made before the first streaming map (probe time), and how many were freed.
    public var probeAllocations: UInt64 = 0
    public var probeAllocationsFreed: UInt64 = 0

    /// What shows the driver releasing the device (unbind, remove), or nil: the device left its
    /// IOMMU group, or the driver freed every coherent allocation it made at probe time (before
    /// its first streaming map), the last of them after its last map. Freeing one scratch buffer
    /// while the rings stay, or a receive ring going quiet, is no teardown.
    public var teardownEvidence: String? {
        if let t = removedFromGroupAt { return "the device left its IOMMU group at \(formatSeconds(t)) s" }
        guard let free = lastFreeTimestamp, probeAllocations > 0, probeAllocationsFreed == probeAllocations,
              probeAllocationsFreedAfterLastMap > 0, free >= (lastMapTimestamp ?? 0) else { return nil }
        return "the driver freed all \(probeAllocations) coherent allocation(s) it made at probe time, the last at \(formatSeconds(free)) s, after its last map"
    }

    public var tornDown: Bool { teardownEvidence != nil }

    init(name: String, at ts: UInt64) {
        self.name = name
        firstTimestamp = ts
        lastTimestamp = ts
    }

    public var syncsObservable: Bool { syncsForCPU + syncsForDevice + bounces > 0 }

    /// From the addresses: dma == phys is direct, a constant dma - phys with no iommu:map behind
    /// it is a bus offset, a swiotlb_bounced event before the map is a bounce, any other
    /// dma != phys an IOMMU translation.
    public var path: Path {
        let bounced = bouncedMappings > 0
        let translated = translatedSegments > 0 && busOffset == nil
        let offset = busOffset != nil
        let direct = directSegments > 0
        if bounced && !direct && !translated && !offset { return .bounce }
        if translated && !direct && !bounced { return .iommu }
        if offset && !translated && !bounced { return .busOffset }
        if direct && !translated && !bounced { return .direct }
        if direct || translated || bounced || offset { return .mixed }
        return .unknown
    }

    public var coherence: Coherence {
        if architecture?.isCoherentByArchitecture == true && architecture!.confidence >= .strong { return .coherentByArchitecture }
        if syncsOfUnbouncedBeforeBounce > 0 || unalignedKmallocBounces > 0 { return .nonCoherent }
        if syncsForCPU + syncsForDevice == 0 && bounces == 0 && maps >= 16 { return .coherent }
        return .unknown
    }

    /// The platform facts the tool assumed for this device, with their evidence.
    public var facts: [PlatformFact] {
        var out: [PlatformFact] = []
        if let a = architecture {
            out.append(PlatformFact(name: "architecture", value: a.arch.rawValue, confidence: a.confidence, evidence: a.evidence))
        }
        out.append(coherenceFact)
        out.append(pathFact)
        return out
    }

    public var coherenceFact: PlatformFact {
        switch coherence {
        case .coherentByArchitecture:
            let syncs = syncsForCPU + syncsForDevice
            return PlatformFact(name: "coherence", value: "coherent", confidence: architecture!.confidence,
                                evidence: "\(architecture!.arch.rawValue) DMA is cache-coherent (the architecture has no ARCH_HAS_SYNC_DMA_FOR_*: dev_is_dma_coherent() is always true)"
                                    + (syncs > 0 ? "; the \(syncs) syncs traced come from swiotlb bouncing (swiotlb_tbl_map_single clears dma_skip_sync), not cache maintenance" : ""))
        case .nonCoherent:
            var why: [String] = []
            if syncsOfUnbouncedBeforeBounce > 0 {
                why.append("\(syncsOfUnbouncedBeforeBounce) syncs of unbounced mappings reached the tracepoint before any swiotlb bounce; on a coherent device the kernel skips them first (dma_skip_sync)")
            }
            if unalignedKmallocBounces > 0 {
                why.append("\(unalignedKmallocBounces) unforced bounces of buffers within the DMA mask that do not fill whole cache lines: DMA_BOUNCE_UNALIGNED_KMALLOC bounces those only for non-coherent devices")
            }
            return PlatformFact(name: "coherence", value: "non-coherent", confidence: .strong, evidence: why.joined(separator: "; "))
        case .coherent:
            return PlatformFact(name: "coherence", value: "no syncs seen", confidence: .weak,
                                evidence: "\(maps) maps and no sync or bounce event: the kernel skips syncs on coherent devices, or the driver never syncs")
        case .unknown:
            let evidence = syncsOfUnbouncedMappings > 0
                ? "syncs of unbounced mappings appear only after swiotlb bounced for the device, which resets its need-sync flag: they do not show cache maintenance"
                : "too few events to tell"
            return PlatformFact(name: "coherence", value: "unknown", confidence: .weak, evidence: evidence)
        }
    }

    public var pathFact: PlatformFact {
        switch path {
        case .direct:
            return PlatformFact(name: "dma path", value: path.rawValue, confidence: .strong, evidence: "\(directSegments) segments with dma == phys")
        case .busOffset:
            return PlatformFact(name: "dma path", value: path.rawValue, confidence: .strong,
                                evidence: "dma = phys + \(hex(busOffset ?? 0)) on all \(translatedSegments) translated segments and no iommu:map behind them (a dma_range_map offset, not an IOMMU)")
        case .iommu:
            return iommuBackedSegments > 0
                ? PlatformFact(name: "dma path", value: path.rawValue, confidence: .proven, evidence: "\(iommuBackedSegments) of \(translatedSegments) translated segments served by iommu:map events")
                : PlatformFact(name: "dma path", value: path.rawValue, confidence: .weak, evidence: "\(translatedSegments) segments with dma != phys and no iommu:map event seen for them")
        case .bounce:
            return PlatformFact(name: "dma path", value: path.rawValue, confidence: .proven, evidence: "\(bouncedMappings) mappings preceded by swiotlb_bounced")
        case .mixed:
            return PlatformFact(name: "dma path", value: path.rawValue, confidence: .strong,
                                evidence: "\(directSegments) direct, \(translatedSegments) translated segments, \(bouncedMappings) bounced mappings")
        case .unknown:
            return PlatformFact(name: "dma path", value: path.rawValue, confidence: .weak, evidence: "no streaming mapping seen")
        }
    }

    /// dma-direct without bouncing or visible syncs: dma_need_unmap() is false
    /// there, and drivers (7.x NVMe) may legitimately skip unmaps.
    public var mayskipUnmaps: Bool {
        directSegments > 0 && (translatedSegments == 0 || busOffset != nil) && bounces == 0 && syncsForCPU + syncsForDevice == 0
    }

    /// Plain-language limits of what this trace lets the tool check for the device.
    public var limitations: [String] {
        var out: [String] = []
        if !dmaEventsTraced {
            return ["no dma events in this trace (the dma tracepoints arrived in Linux 6.12): only its \(bounces) swiotlb bounces are counted; maps, unmaps, syncs and allocations cannot be checked"]
        }
        if !syncsObservable {
            out.append("no sync or bounce events: the kernel skips syncs before the tracepoint on a coherent path (or the driver never syncs), so ownership (missing-sync) cannot be checked")
        }
        if coherence != .nonCoherent {
            out.append(coherence == .coherentByArchitecture
                       ? "coherent by architecture: cache-line sharing is harmless and not judged"
                       : "coherence not shown as non-coherent: cache-line sharing is not judged")
        }
        if mayskipUnmaps {
            out.append("dma-direct without bouncing: unmaps may be skipped by design (dma_need_unmap() false); unreleased mappings are notes")
        }
        if !historyStartsInTrace {
            out.append("the device was active before the trace began: unmaps, syncs and frees of earlier mappings are expected")
        }
        return out
    }
}
