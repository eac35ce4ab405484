final class UnmapWrongFunctionRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.unmapped, .freed]

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

    static func family(_ f: StreamingMapping.Function) -> String {
        switch f {
        case .scatterGather: "scatter-gather"
        case .single(let api): api.isMMIO ? "MMIO resource" : "single page"
        case .allocation(let api): "dma_alloc_\(api.rawValue)"
        }
    }

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        if case .freed(let a, let free, let f) = fact, f.api != a.api {
            context.report(Self.description, event: free,
                           message: "frees a dma_alloc_\(a.api.rawValue) allocation with dma_free_\(f.api.rawValue) for the \(Describe.allocation(a))",
                           history: a.history, shape: "free|\(a.api.rawValue)|\(f.api.rawValue)|\(a.size)")
            return
        }
        guard case .unmapped(let m, let unmap, _, _, let function, _) = fact,
              Self.family(function) != Self.family(m.function) else { return }
        context.report(Self.description, event: unmap,
                       message: "releases a \(Self.family(m.function)) mapping with a \(Self.family(function)) unmap [mapped with \(m.function)] [unmapped with \(unmap.kind.name)] for the \(Describe.mapping(m))",
                       history: m.history + [unmap], shape: Describe.shape(m))
    }
}
