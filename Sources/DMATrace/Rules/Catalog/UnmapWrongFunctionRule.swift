final class UnmapWrongFunctionRule: DMARule {
    static let interests: Set<ModelFact.Kind> = ModelFact.Kind.unmapsNotAsMapped.union([.freed])

    static let description = RuleDescription(
        id: "unmap-wrong-function", name: "Unmap with the wrong function", severity: .error,
        summary: "A mapping or allocation is released with a function of another kind (sg vs single, memory vs MMIO, coherent vs pages vs sgt).",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.mapSG("1.0", dir: "TO_DEVICE", phys: ["100000"], dma: ["100000"], sizes: [4096]),
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "100000", size: 4096),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.mapSG("1.0", dir: "TO_DEVICE", phys: ["100000"], dma: ["100000"], sizes: [4096]),
                Example.unmapSG("1.1", dir: "TO_DEVICE", phys: ["100000"]),
            ]),
        ])

    /// The kind of release a mapping needs: dma_unmap_single/page, _sg, _resource or the
    /// matching dma_free_*.
    enum Family: Equatable, CustomStringConvertible {
        case scatterGather, mmio, single
        case allocation(AllocAPI)

        init(_ f: StreamingMapping.Function) {
            switch f {
            case .scatterGather: self = .scatterGather
            case .single(let api): self = api.isMMIO ? .mmio : .single
            case .allocation(let api): self = .allocation(api)
            }
        }

        var description: String {
            switch self {
            case .scatterGather: "scatter-gather"
            case .mmio: "MMIO resource"
            case .single: "single page"
            case .allocation(let api): "dma_alloc_\(api.rawValue)"
            }
        }
    }

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        if case .freed(let a, let free, let f) = fact, f.api != a.api {
            context.report(Self.description, event: free,
                           message: "frees a dma_alloc_\(a.api.rawValue) allocation with dma_free_\(f.api.rawValue) for the \(Describe.allocation(a))",
                           history: a.history, shape: "free|\(a.api.rawValue)|\(f.api.rawValue)|\(a.size)")
            return
        }
        // The common case, a release by the function that mapped, binds nothing it would have to
        // retain and builds no family.
        guard case .unmapped(let m, _, _, _, let function, _) = fact, function != m.function,
              Family(function) != Family(m.function),
              case .unmapped(_, let unmap, _, _, _, _) = fact else { return }
        context.report(Self.description, event: unmap,
                       message: "releases a \(Family(m.function)) mapping with a \(Family(function)) unmap [mapped with \(m.function)] [unmapped with \(unmap.kind.name)] for the \(Describe.mapping(m))",
                       history: m.history + [unmap], shape: Describe.shape(m))
    }
}
