final class FreeSizeMismatchRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.freed, .unmappedByFree]

    static let description = RuleDescription(
        id: "free-size-mismatch", name: "Free with a different size", severity: .error,
        summary: "Coherent memory is freed with a size other than the one allocated.",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.free("1.0", dma: "f0000", size: 2048, virt: "0xffff8880000f0000"),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.free("1.0", dma: "f0000", size: 4096, virt: "0xffff8880000f0000"),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        if case .unmapped(let m, let free, let size?, _, .allocation, _) = fact, case .alloc(let a) = m.mapEvent.kind, size != a.size {
            context.report(Self.description, event: free,
                           message: "frees DMA memory with a different size [alloc size=\(a.size) bytes] [free size=\(size) bytes] for the \(Describe.mapping(m))",
                           history: m.history + [free], shape: "free|\(a.api.rawValue)|\(a.size)|\(size)")
            return
        }
        guard case .freed(let a, let free, let f) = fact, f.size != a.size else { return }
        context.report(Self.description, event: free,
                       message: "frees DMA memory with a different size [alloc size=\(a.size) bytes] [free size=\(f.size) bytes] for the \(Describe.allocation(a))",
                       history: a.history, shape: "free|\(a.api.rawValue)|\(a.size)|\(f.size)")
    }
}
