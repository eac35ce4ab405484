/// Wording shared by the rules, so every message names mappings the same way.
enum Describe {
    static func dir(_ d: DMADirection?) -> String { d?.description ?? "invalid-direction" }

    static func mapping(_ m: StreamingMapping) -> String {
        let what: String
        switch m.function {
        case .scatterGather:
            what = "\(dir(m.direction)) dma_map_sg (\(m.inputEntries) entries, \(m.segments.count) segments, \(m.size) bytes) at dma \(hex(m.dmaAddr))"
        case .single, .allocation:
            what = "\(dir(m.direction)) \(m.function) of \(m.size) bytes at dma \(hex(m.dmaAddr))"
        }
        let phys = m.physAddr != m.dmaAddr && m.physAddr != 0 ? " (phys \(hex(m.physAddr)))" : ""
        return what + phys + " mapped at \(formatSeconds(m.mappedAt)) s"
    }

    static func allocation(_ a: CoherentAllocation) -> String {
        "dma_alloc_\(a.api.rawValue) of \(a.size) bytes at dma \(hex(a.dmaAddr)) (cpu \(a.cpuAddr.text)) at \(formatSeconds(a.allocEvent.timestamp)) s"
    }

    /// A shape that identifies a bug across recordings when there is no stack.
    static func shape(_ m: StreamingMapping) -> String {
        "\(m.function)|\(dir(m.direction))|\(m.size)"
    }

    static func shape(_ e: DMAEvent) -> String {
        "\(e.kind.name)|\(sizeClass(e))"
    }

    private static func sizeClass(_ e: DMAEvent) -> String {
        switch e.kind {
        case .unmap(let u): "\(dir(u.direction))|\(u.size)"
        case .sync(let s): "\(dir(s.direction))|\(s.lengths.first ?? 0)"
        case .free(let f): "\(f.size)"
        case .unmapSG(let u): "\(dir(u.direction))|\(u.physAddrs.count)"
        default: ""
        }
    }

    static func syncName(_ s: SyncEvent) -> String {
        (s.scatterGather ? "dma_sync_sg_for_" : "dma_sync_single_for_") + s.target.rawValue
    }
}

/// Example prelude: the driver's probe-time allocation, so the device's
/// history starts inside the trace (dma-direct, linear map at 0xffff888000000000).
enum Example {
    static let dev = "0000:00:05.0"
    static let probe = "0.5 dma_alloc: \(dev) dir=BIDIRECTIONAL dma_addr=f0000 size=4096 virt_addr=0xffff8880000f0000 flags=GFP_KERNEL attrs="
    static let probe2 = "0.6 dma_alloc: \(dev) dir=BIDIRECTIONAL dma_addr=f2000 size=4096 virt_addr=0xffff8880000f2000 flags=GFP_KERNEL attrs="

    static func map(_ t: String, dir: String, dma: String, size: Int, phys: String? = nil, attrs: String = "", dev: String = dev,
                    event: String = "dma_map_page") -> String {
        "\(t) \(event): \(dev) dir=\(dir) dma_addr=\(dma) size=\(size) phys_addr=\(phys ?? dma) attrs=\(attrs)"
    }

    static func unmap(_ t: String, dir: String, dma: String, size: Int, attrs: String = "", dev: String = dev,
                      event: String = "dma_unmap_page") -> String {
        "\(t) \(event): \(dev) dir=\(dir) dma_addr=\(dma) size=\(size) attrs=\(attrs)"
    }

    static func sync(_ t: String, cpu: Bool, dir: String, dma: String, size: Int, dev: String = dev) -> String {
        "\(t) dma_sync_single_for_\(cpu ? "cpu" : "device"): \(dev) dir=\(dir) dma_addr=\(dma) size=\(size)"
    }

    static func mapSG(_ t: String, dir: String, phys: [String], dma: [String], sizes: [Int], attrs: String = "",
                      dev: String = dev) -> String {
        "\(t) dma_map_sg: \(dev) dir=\(dir) nents=\(phys.count)/\(phys.count) ents=\(dma.count)/\(dma.count) dma_addrs={\(dma.map { "0x" + $0 }.joined(separator: ","))} sizes={\(sizes.map(String.init).joined(separator: ","))} phys_addrs={\(phys.map { "0x" + $0 }.joined(separator: ","))} attrs=\(attrs)"
    }

    static func unmapSG(_ t: String, dir: String, phys: [String], attrs: String = "", dev: String = dev) -> String {
        "\(t) dma_unmap_sg: \(dev) dir=\(dir) phys_addrs={\(phys.map { "0x" + $0 }.joined(separator: ","))} attrs=\(attrs)"
    }

    static func alloc(_ t: String, dma: String, size: Int, virt: String, attrs: String = "", dev: String = dev) -> String {
        "\(t) dma_alloc: \(dev) dir=BIDIRECTIONAL dma_addr=\(dma) size=\(size) virt_addr=\(virt) flags=GFP_KERNEL attrs=\(attrs)"
    }

    static func free(_ t: String, dma: String, size: Int, virt: String, dev: String = dev) -> String {
        "\(t) dma_free: \(dev) dir=BIDIRECTIONAL dma_addr=\(dma) size=\(size) virt_addr=\(virt) attrs="
    }

    static func bounce(_ t: String, orig: String, size: Int, dev: String = dev) -> String {
        "\(t) swiotlb_bounced: dev_name: \(dev) dma_mask=ffffffffffffffff dev_addr=\(orig) size=\(size) FORCE"
    }
}

extension RuleContext {
    /// The shared verdict of the "matches nothing in this trace" rules: a note when the
    /// device was busy before the trace began (the map or alloc most likely predates it),
    /// the rule's own severity when the trace saw the driver start.
    func reportNeverSeen(_ rule: RuleDescription, _ e: DMAEvent, mayPredate: Bool, verb: String, thing: String,
                         extra: String = "", history: [DMAEvent] = []) {
        let participle = thing == "allocation" ? "allocated" : "mapped"
        report(rule, severity: mayPredate ? .note : nil, event: e,
               message: mayPredate
                   ? "\(e.kind.name) of \(e.kind.details) matches no \(thing) in this trace; the device was active before the trace began, so it was most likely \(participle) earlier\(extra)"
                   : "\(verb) DMA memory it has not \(participle): \(e.kind.name) of \(e.kind.details), and the trace shows the driver from its first allocation\(extra)",
               history: [e] + (mayPredate ? [] : history), shape: Describe.shape(e), scope: .anyCPUBefore)
    }
}
