final class UnmapDirectionMismatchRule: DMARule {
    static let interests: Set<ModelFact.Kind> = ModelFact.Kind.unmapsNotAsMapped

    static let description = RuleDescription(
        id: "unmap-direction-mismatch", name: "Unmap with a different direction", severity: .error,
        summary: "A mapping is unmapped with a DMA direction other than the one it was mapped with.",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "100000", size: 4096),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.1", dir: "FROM_DEVICE", dma: "100000", size: 4096),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        // The common case, a matching release, binds nothing it would have to retain.
        guard case .unmapped(let m, _, _, let direction, _, _) = fact, direction != m.direction,
              case .unmapped(_, let unmap, _, _, _, _) = fact else { return }
        // Alloc and free events of some 6.13-6.17 kernels carry a garbage dir (fixed in 6.18).
        if m.isAllocation && (m.direction == nil || direction == nil) { return }
        context.report(Self.description, event: unmap,
                       message: "unmaps DMA memory with a different direction [mapped with \(Describe.dir(m.direction))] [unmapped with \(Describe.dir(direction))] for the \(Describe.mapping(m))",
                       history: m.history + [unmap], shape: Describe.shape(m))
    }
}
