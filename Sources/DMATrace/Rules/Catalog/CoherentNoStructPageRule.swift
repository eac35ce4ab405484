/// dma_alloc_* results whose CPU address is outside the linear map, so
/// virt_to_page() on it yields a bogus page.
final class CoherentNoStructPageRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.allocated, .overlapsCoherent, .mapped]

    static let description = RuleDescription(
        id: "coherent-no-struct-page", name: "Coherent memory without a linear-map address", severity: .note,
        summary: "A coherent allocation's CPU address is not in the linear map (NO_KERNEL_MAPPING cookie, vmalloc remap, device pool); an error when it is then used as if it had a struct page.",
        examples: [
            RuleExample(triggers: true, severity: .note, [
                Example.probe,
                Example.probe2,
                Example.alloc("0.7", dma: "f4000", size: 4096, virt: "0xffffc90000100000"),
            ]),
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.probe2,
                Example.alloc("0.7", dma: "f4000", size: 4096, virt: "0xffffc90000100000"),
                Example.map("0.8", dir: "TO_DEVICE", dma: "f4000", size: 512),
                Example.unmap("0.9", dir: "TO_DEVICE", dma: "f4000", size: 512),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.probe2,
                Example.alloc("0.7", dma: "f4000", size: 4096, virt: "0xffff8880000f4000"),
            ]),
        ])

    private struct Candidate {
        let allocation: CoherentAllocation
        var misuse: DMAEvent?
        var misuseReason: String?
        /// The misuse was a map of a physical address no RAM has: proof on its own.
        var impossibleMap = false
    }

    private var candidates: [Int: Candidate] = [:]
    private var order: [Int] = []
    private var maxPhys: UInt64 = 0
    private var absurdMaps: [DMAEvent] = []

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        switch fact {
        case .allocated(let a):
            guard a.cpuAddr.value != nil, a.api != .sgt, order.count < 8192 else { return }
            candidates[a.id] = Candidate(allocation: a)
            order.append(a.id)
            for r in a.physRanges { maxPhys = max(maxPhys, r.physAddr &+ r.length) }
        case .overlapsCoherent(let m, let a, _):
            if candidates[a.id]?.misuse == nil {
                candidates[a.id]?.misuse = m.mapEvent
                candidates[a.id]?.misuseReason = "its memory was then mapped as streaming memory"
            }
        case .mapped(let m):
            // MMIO (a peer's BAR) is not RAM and needs no struct page.
            guard !m.function.isMMIOMapping, !m.isAllocation else { return }
            let phys = m.physAddr
            // Beyond 2^52 no x86-64 or arm64 machine has memory. Far beyond all memory seen so
            // far is only a candidate: big NUMA machines have RAM above 1 TiB.
            let candidate = phys >= 1 << 52 || (maxPhys > 0 && phys >= max(1 << 40, maxPhys &* 16))
            if candidate, absurdMaps.count < 256 {
                absurdMaps.append(m.mapEvent)
            } else {
                maxPhys = max(maxPhys, phys &+ m.size)
            }
        default:
            return
        }
    }

    static func physOf(_ e: DMAEvent) -> UInt64? {
        switch e.kind {
        case .map(let m): m.physAddr
        case .mapSG(let s): s.physAddrs.first
        default: nil
        }
    }

    func finish(_ context: RuleContext) {
        let linear = context.model.linearMapOffset
        var plain: [String: [CoherentAllocation]] = [:]
        for id in order {
            guard var c = candidates[id], case .value(let cpu) = c.allocation.cpuAddr else { continue }
            let a = c.allocation
            let cookie = a.attrs.contains(.noKernelMapping)
            var inLinearMap: Bool?
            if let linear, let phys = a.physRanges.first?.physAddr { inLinearMap = cpu &- phys == linear.offset }
            // A map of a physical address no RAM can have, by the same task right after the
            // allocation, is virt_to_page() of its CPU address: proof it has no struct page,
            // even where the linear map's offset cannot be inferred (under an IOMMU).
            if c.misuse == nil, let bogus = absurdMaps.first(where: {
                $0.device == a.device && $0.pid == a.allocEvent.pid && $0.timestamp >= a.allocEvent.timestamp
                    && $0.timestamp - a.allocEvent.timestamp < 1_000_000_000
            }), let phys = Self.physOf(bogus) {
                // virt_to_phys() subtracts the linear map's base: the CPU address minus that physical
                // address is then a linear-map base (1 GiB aligned, in the kernel half). Proof when
                // the address is beyond 2^52 or has that shape; otherwise it may be RAM we never saw.
                let base = cpu &- phys
                let linearShape = base & ((1 << 30) - 1) == 0 && base >= 0xFF00_0000_0000_0000
                if phys >= 1 << 52 || linearShape {
                    c.misuse = bogus
                    c.impossibleMap = true
                    c.misuseReason = "right after it the same task mapped physical address \(hex(phys)), "
                        + (phys >= 1 << 52 ? "beyond any physical address a machine can have" : "which is this CPU address minus a linear-map base (\(hex(base)))")
                        + ": virt_to_page() of this CPU address"
                }
            }
            guard cookie || inLinearMap == false || c.impossibleMap else { continue }
            let kind = cookie ? "a DMA_ATTR_NO_KERNEL_MAPPING cookie (on dma-direct a struct page pointer, not memory the CPU may touch)"
                : inLinearMap == false ? "not in the linear map (a vmalloc remap or a device memory pool)"
                : "not a linear-map address"
            let sure = linear.map { " Linear map offset \(hex($0.offset)) inferred from \($0.agreeing) of \($0.total) allocations." } ?? ""
            if let misuse = c.misuse, let why = c.misuseReason {
                // An overlap with memory whose physical address was only taken to be its bus
                // address, on a device whose maps never showed dma-direct, is an inference.
                let profile = context.model.profile(of: a.device)
                let weak = !c.impossibleMap && a.physAssumed && (profile.map { $0.directSegments == 0 && $0.bouncedMappings == 0 } ?? true)
                context.report(Self.description, severity: weak ? .warning : .error, event: misuse, device: a.device,
                               message: "the CPU address \(hex(cpu)) of the \(Describe.allocation(a)) is \(kind), and \(why): virt_to_page() on it gives a page that is not this memory.\(sure)",
                               history: a.history + [misuse], shape: "nopage-misuse|\(a.api.rawValue)|\(a.size)",
                               caveats: weak ? [(profile?.pathFact.assumption ?? "assumed dma path: dma-direct (weak)") + "; the allocation's bus address was taken as its physical address"] : [])
            } else {
                plain[a.device + "|" + (cookie ? "cookie" : "remap"), default: []].append(a)
            }
        }
        for (key, allocations) in plain.sorted(by: { $0.key < $1.key }) {
            let a = allocations[0]
            let cookie = key.hasSuffix("cookie")
            let sure = linear.map { " (linear map offset \(hex($0.offset)) inferred from \($0.agreeing) of \($0.total) allocations)" } ?? ""
            context.report(Self.description, event: a.allocEvent, device: a.device,
                           message: "\(allocations.count) coherent allocation(s) have CPU addresses \(cookie ? "that are DMA_ATTR_NO_KERNEL_MAPPING cookies" : "outside the linear map\(sure)"), e.g. \(a.cpuAddr.text) for the \(Describe.allocation(a)): "
                               + "fine as long as the driver never calls virt_to_page()/virt_to_phys() on them or maps them as streaming memory",
                           history: a.history, shape: "nopage|\(cookie)", occurrences: allocations.count)
        }
    }
}
