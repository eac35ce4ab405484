/// What the trace shows about one device, and therefore what can be checked.
public struct DeviceProfile: Sendable, Codable {
    public enum Path: String, Sendable, Codable {
        case direct = "dma-direct"
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
    public var liveAllocations: Int = 0
    public var peakLiveAllocations: Int = 0
    public var directSegments: UInt64 = 0
    /// Segments whose dma address is neither the physical address nor a bounce slot.
    public var translatedSegments: UInt64 = 0
    public var iommuBackedSegments: UInt64 = 0
    public var bouncedMappings: UInt64 = 0
    public var syncsOfUnbouncedMappings: UInt64 = 0
    /// Mappings abandoned without unmap and replaced by a new mapping of the same memory.
    public var supersededMappings: UInt64 = 0
    public var firstMapTimestamp: UInt64?
    public var lastMapTimestamp: UInt64?
    public var lastFreeTimestamp: UInt64?
    /// Coherent allocations made before the first streaming map (probe time), and how many were freed.
    public var probeAllocations: UInt64 = 0
    public var probeAllocationsFreed: UInt64 = 0

    /// The trace shows the driver releasing the device (unbind, remove): it freed at least
    /// half of its probe-time coherent memory and mapped nothing afterwards. A driver that
    /// frees a scratch buffer at run time does not qualify.
    public var tornDown: Bool {
        guard let free = lastFreeTimestamp, probeAllocations > 0 else { return false }
        return probeAllocationsFreed * 2 >= probeAllocations && free >= (lastMapTimestamp ?? 0)
    }

    init(name: String, at ts: UInt64) {
        self.name = name
        firstTimestamp = ts
        lastTimestamp = ts
    }

    public var syncsObservable: Bool { syncsForCPU + syncsForDevice + bounces > 0 }

    /// From the addresses: dma == phys is direct, a swiotlb_bounced event before the map is a
    /// bounce, any other dma != phys is an IOMMU translation.
    public var path: Path {
        let bounced = bouncedMappings > 0
        let translated = translatedSegments > 0
        let direct = directSegments > 0
        if bounced && !direct && !translated { return .bounce }
        if translated && !direct && !bounced { return .iommu }
        if direct && !translated && !bounced { return .direct }
        if direct || translated || bounced { return .mixed }
        return .unknown
    }

    public var coherence: Coherence {
        if syncsOfUnbouncedMappings > 0 { return .nonCoherent }
        if syncsForCPU + syncsForDevice == 0 && bounces == 0 && maps >= 16 { return .coherent }
        return .unknown
    }

    /// dma-direct without bouncing or visible syncs: dma_need_unmap() is false
    /// there, and drivers (7.x NVMe) may legitimately skip unmaps.
    public var mayskipUnmaps: Bool {
        directSegments > 0 && translatedSegments == 0 && bounces == 0 && syncsForCPU + syncsForDevice == 0
    }

    /// Plain-language limits of what this trace lets the tool check for the device.
    public var limitations: [String] {
        var out: [String] = []
        if !syncsObservable {
            out.append("no sync or bounce events: the kernel skips syncs before the tracepoint on a coherent path (or the driver never syncs), so ownership (missing-sync) cannot be checked")
        }
        if coherence != .nonCoherent {
            out.append("coherence not shown as non-coherent: cache-line sharing is not judged")
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
