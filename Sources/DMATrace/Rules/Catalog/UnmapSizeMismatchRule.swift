final class UnmapSizeMismatchRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.unmappedSingle]

    static let description = RuleDescription(
        id: "unmap-size-mismatch", name: "Unmap with a different size", severity: .error,
        summary: "A mapping is unmapped with a size other than the one it was mapped with.",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "100000", size: 2048),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "100000", size: 4096),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .unmapped(let m, let unmap, let size?, _, let function, _) = fact,
              case .single = function, !m.isScatterGather, let mapped = m.segments.first?.length, mapped != size else { return }
        context.report(Self.description, event: unmap,
                       message: "unmaps DMA memory with a different size [map size=\(mapped) bytes] [unmap size=\(size) bytes] for the \(Describe.mapping(m))",
                       history: m.history + [unmap], shape: Describe.shape(m))
    }
}
