/// How events name and describe themselves, for `events`, histories and reports.

func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

extension TracedPointer {
    var text: String {
        switch self {
        case .value(let v): hex(v)
        case .hashed(let h?): "hash " + String(h, radix: 16)
        case .hashed(nil): "(hashed)"
        case .absent: "(not traced)"
        }
    }
}

extension DMAEventKind {
    /// A stable short name, used for filters, counts and JSON.
    public var name: String {
        switch self {
        case .map(let m): "map_" + m.api.rawValue
        case .unmap(let u): "unmap_" + u.api.rawValue
        case .mapSG: "map_sg"
        case .mapSGError: "map_sg_err"
        case .unmapSG: "unmap_sg"
        case .sync(let s): (s.scatterGather ? "sync_sg_for_" : "sync_single_for_") + s.target.rawValue
        case .alloc(let a): a.failed ? "alloc_\(a.api.rawValue)_err" : "alloc_\(a.api.rawValue)"
        case .free(let f): "free_" + f.api.rawValue
        case .bounce: "swiotlb_bounce"
        case .iommuMap: "iommu_map"
        case .iommuUnmap: "iommu_unmap"
        case .iommuFault: "iommu_fault"
        case .iommuGroup(let g): "iommu_group_" + g.change.rawValue
        case .lostEvents: "lost_events"
        case .marker: "marker"
        case .unknown(let n): n
        case .outOfOrder: "out_of_order"
        }
    }

    public static let allNames: [String] = [
        "map_page", "map_phys", "map_resource", "map_mmio", "unmap_page", "unmap_phys", "unmap_resource",
        "unmap_mmio", "map_sg", "map_sg_err", "unmap_sg", "sync_single_for_cpu", "sync_single_for_device",
        "sync_sg_for_cpu", "sync_sg_for_device", "alloc_coherent", "alloc_pages", "alloc_sgt", "alloc_sgt_err",
        "free_coherent", "free_pages", "free_sgt", "swiotlb_bounce", "iommu_map", "iommu_unmap", "iommu_fault",
        "iommu_group_add", "iommu_group_remove", "iommu_group_attach", "lost_events", "marker", "out_of_order",
    ]

    /// `key=value` details as a driver developer reads them.
    public var details: String {
        func dir(_ d: DMADirection?) -> String { d.map { $0.description } ?? "?" }
        func attrs(_ a: DMAAttributes) -> String { a.isEmpty ? "" : " attrs=\(a)" }
        func list(_ xs: [UInt64], hexa: Bool = true) -> String {
            let shown = xs.prefix(8).map { hexa ? hex($0) : String($0) }.joined(separator: ",")
            return "[" + shown + (xs.count > 8 ? ",…+\(xs.count - 8)" : "") + "]"
        }
        switch self {
        case .map(let m):
            return "dir=\(dir(m.direction)) dma=\(hex(m.dmaAddr)) size=\(m.size) phys=\(hex(m.physAddr))\(attrs(m.attrs))"
        case .unmap(let u):
            return "dir=\(dir(u.direction)) dma=\(hex(u.dmaAddr)) size=\(u.size)\(attrs(u.attrs))"
        case .mapSG(let s):
            return "dir=\(dir(s.direction)) nents=\(s.inputEntries) ents=\(s.mappedEntries)\(s.truncated ? " TRUNCATED" : "")"
                + " dma=\(list(s.dmaAddrs)) lengths=\(list(s.lengths, hexa: false)) phys=\(list(s.physAddrs))\(attrs(s.attrs))"
        case .mapSGError(let e):
            return "dir=\(dir(e.direction)) err=\(e.error) phys=\(list(e.physAddrs))\(attrs(e.attrs))"
        case .unmapSG(let u):
            return "dir=\(dir(u.direction)) nents=\(u.physAddrs.count) phys=\(list(u.physAddrs))\(attrs(u.attrs))"
        case .sync(let s):
            if !s.scatterGather, let a = s.dmaAddrs.first, let l = s.lengths.first {
                return "dir=\(dir(s.direction)) dma=\(hex(a)) size=\(l)"
            }
            return "dir=\(dir(s.direction)) nents=\(s.dmaAddrs.count) dma=\(list(s.dmaAddrs)) lengths=\(list(s.lengths, hexa: false))"
        case .alloc(let a):
            let phys = a.physAddrs.isEmpty ? "" : " phys=\(list(a.physAddrs))"
            return "dma=\(hex(a.dmaAddr)) size=\(a.size) cpu_addr=\(a.cpuAddr.text)\(phys)\(attrs(a.attrs))"
        case .free(let f):
            let phys = f.physAddrs.isEmpty ? "" : " phys=\(list(f.physAddrs))"
            return "dma=\(hex(f.dmaAddr)) size=\(f.size) cpu_addr=\(f.cpuAddr.text)\(phys)\(attrs(f.attrs))"
        case .bounce(let b):
            return "orig_phys=\(hex(b.origAddr)) size=\(b.size) dma_mask=\(hex(b.dmaMask))\(b.forced ? " forced" : "")"
        case .iommuMap(let m):
            return "iova=\(hex(m.iova)) phys=\(hex(m.physAddr)) size=\(m.size)"
        case .iommuUnmap(let u):
            return "iova=\(hex(u.iova)) size=\(u.size) unmapped=\(u.unmappedSize)"
        case .iommuFault(let f):
            return "iova=\(hex(f.iova)) flags=\(hex(UInt64(bitPattern: f.flags))) driver=\(f.driver)"
        case .iommuGroup(let g):
            return g.groupID.map { "group=\($0)" } ?? ""
        case .lostEvents(let count):
            return count.map { "\($0) events lost" } ?? "events lost (count unknown)"
        case .marker(let text):
            return text
        case .unknown:
            return ""
        case .outOfOrder(let kind, let ts, let line):
            return "by line \(line): \(kind.name) at \(formatSeconds(ts)) \(kind.details)"
        }
    }
}

extension DMAEvent {
    /// One line: time, CPU, task-pid, device, event and details.
    public var line: String {
        let time = formatSeconds(timestamp)
        let who = pid >= 0 ? "\(task)-\(pid)" : "-"
        return "\(time) [\(String(format3: cpu))] \(who) \(device ?? "-") \(kind.name) \(kind.details)"
    }
}

/// Nanoseconds as "seconds.nanoseconds", exact.
public func formatSeconds(_ ns: UInt64) -> String {
    let s = ns / 1_000_000_000
    let frac = String(ns % 1_000_000_000)
    return "\(s)." + String(repeating: "0", count: 9 - frac.count) + frac
}

extension String {
    init(format3 value: Int32) {
        let s = String(value)
        self = s.count >= 3 ? s : String(repeating: "0", count: 3 - s.count) + s
    }
}
