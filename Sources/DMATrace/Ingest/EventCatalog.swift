/// The trace events this tool understands, by kernel name, shared by the
/// binary and the text decoders so both agree on what an event means.
enum KnownEvent: Sendable, Hashable {
    case mapSingle(SingleMapAPI)
    case unmapSingle(SingleMapAPI)
    case mapSG
    case mapSGError
    case unmapSG
    case syncSingle(SyncEvent.Target)
    case syncSG(SyncEvent.Target)
    case alloc(AllocAPI)
    case allocError(AllocAPI)
    case free(AllocAPI)
    case bounce
    case iommuMap
    case iommuUnmap
    case iommuFault
    case iommuGroup(IOMMUGroupEvent.Change)
    case print
    case bprint
    case kernelStack

    /// Systems whose unknown events are counted as "DMA events this tool does not model".
    static let dmaSystems: Set<String> = ["dma", "swiotlb", "iommu"]

    /// `system` may be nil for text input, which names only the event.
    static func classify(system: String?, name: String) -> KnownEvent? {
        switch name {
        case "dma_map_page": return .mapSingle(.page)
        case "dma_map_phys": return .mapSingle(.phys)
        case "dma_map_resource": return .mapSingle(.resource)
        case "dma_unmap_page": return .unmapSingle(.page)
        case "dma_unmap_phys": return .unmapSingle(.phys)
        case "dma_unmap_resource": return .unmapSingle(.resource)
        case "dma_map_sg": return .mapSG
        case "dma_map_sg_err": return .mapSGError
        case "dma_unmap_sg": return .unmapSG
        case "dma_sync_single_for_cpu": return .syncSingle(.cpu)
        case "dma_sync_single_for_device": return .syncSingle(.device)
        case "dma_sync_sg_for_cpu": return .syncSG(.cpu)
        case "dma_sync_sg_for_device": return .syncSG(.device)
        case "dma_alloc": return .alloc(.coherent)
        case "dma_alloc_pages": return .alloc(.pages)
        case "dma_alloc_sgt": return .alloc(.sgt)
        case "dma_alloc_sgt_err": return .allocError(.sgt)
        case "dma_free": return .free(.coherent)
        case "dma_free_pages": return .free(.pages)
        case "dma_free_sgt": return .free(.sgt)
        case "swiotlb_bounced": return .bounce
        case "io_page_fault": return .iommuFault
        case "add_device_to_group": return .iommuGroup(.add)
        case "remove_device_from_group": return .iommuGroup(.remove)
        case "attach_device_to_domain": return .iommuGroup(.attach)
        case "kernel_stack": return (system == nil || system == "ftrace") ? .kernelStack : nil
        case "print": return (system == nil || system == "ftrace") ? .print : nil
        // tracefs text names trace_marker writes by the writing function, not by the event.
        case "tracing_mark_write": return system == nil ? .print : nil
        case "bprint": return (system == nil || system == "ftrace") ? .bprint : nil
        // iommu's map/unmap have generic names: only trust them in the iommu system
        // or, in text, where the caller has checked the "IOMMU:" payload.
        case "map": return (system == nil || system == "iommu") ? .iommuMap : nil
        case "unmap": return (system == nil || system == "iommu") ? .iommuUnmap : nil
        default: return nil
        }
    }
}

/// Which generation of the dma event system a trace comes from (DOMAIN.md §2).
public enum EventGeneration: String, Sendable, Codable, CustomStringConvertible {
    /// dma_map_page/resource without the alloc_pages/sgt family (upstream 6.12).
    case v6_12 = "6.12"
    /// dma_map_page/resource plus dma_alloc_pages, _sgt, map_sg_err (6.13 to 6.17).
    case v6_13 = "6.13-6.17"
    /// dma_map_phys/unmap_phys; map_resource folded into MMIO attrs (6.18, 7.x).
    case v6_18 = "6.18+"
    case unknown = "unknown"

    public var description: String {
        switch self {
        case .v6_12: "6.12 (dma_map_page, dma_map_resource)"
        case .v6_13: "6.13-6.17 (dma_map_page, dma_alloc_pages/sgt, dma_map_sg_err)"
        case .v6_18: "6.18+ (dma_map_phys, MMIO attr)"
        case .unknown: "unknown (no dma event formats seen)"
        }
    }

    static func detect(eventNames: Set<String>) -> EventGeneration {
        if eventNames.contains("dma_map_phys") || eventNames.contains("dma_unmap_phys") { return .v6_18 }
        if eventNames.contains("dma_alloc_pages") || eventNames.contains("dma_alloc_sgt")
            || eventNames.contains("dma_map_sg_err") { return .v6_13 }
        if eventNames.contains("dma_map_page") || eventNames.contains("dma_map_sg")
            || eventNames.contains("dma_alloc") { return .v6_12 }
        return .unknown
    }
}
