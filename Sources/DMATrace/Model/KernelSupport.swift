/// What a trace can show given the kernel that recorded it: the dma tracepoints arrived in
/// Linux 6.12 (include/trace/events/dma.h); older kernels trace only swiotlb and iommu.
extension TraceFacts {
    /// "6.1.0-28-amd64" -> (6, 1).
    public var kernelVersion: (major: Int, minor: Int)? {
        guard let r = kernelRelease else { return nil }
        let parts = r.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return parts.count == 2 ? (parts[0], parts[1]) : nil
    }

    /// The dma event system is missing: said up front by info, analyze and the HTML report.
    public var dmaEventsNotice: String? {
        let old = kernelVersion.map { $0.major < 6 || ($0.major == 6 && $0.minor < 12) } ?? false
        guard generation == .unknown || old else { return nil }
        let who = old ? "Kernel \(kernelRelease!) has no dma events" : "This trace has no dma events"
        let why = old ? "the dma tracepoints arrived in Linux 6.12"
            : "the dma tracepoints arrived in Linux 6.12, so the kernel is older or the dma events were not enabled"
        return "\(who): \(why). What it can still show: swiotlb bounces per device and the IOMMU map/unmap balance; maps, unmaps, syncs and allocations cannot be checked."
    }
}

/// iommu:map / iommu:unmap counts: on kernels without dma events, what is left to check.
public struct IOMMUBalance: Sendable, Codable {
    public var maps: UInt64
    public var unmaps: UInt64
    /// Unmaps of an IOVA no iommu:map in the trace mapped (normal for mappings made before it).
    public var unmapsOfUnknownIOVA: UInt64
    /// IOVAs still mapped when the trace ended.
    public var stillMapped: Int
}

extension DMAModel {
    public var iommuBalance: IOMMUBalance? {
        iommuMaps + iommuUnmaps == 0 ? nil
            : IOMMUBalance(maps: iommuMaps, unmaps: iommuUnmaps, unmapsOfUnknownIOVA: iommuUnmapsUnknown, stillMapped: iommuMappings.count)
    }
}
