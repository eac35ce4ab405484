/// A streaming mapping of memory that belongs to a live coherent allocation.
final class StreamingOverCoherentRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.overlapsCoherent]

    static let description = RuleDescription(
        id: "streaming-over-coherent", name: "Streaming map of coherent memory", severity: .error,
        summary: "A streaming mapping overlaps a live coherent allocation (virt_to_page() on dma_alloc_coherent memory).",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "f0000", size: 512),
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "f0000", size: 512),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "f1000", size: 512),
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "f1000", size: 512),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .overlapsCoherent(let m, let a, let bytes) = fact else { return }
        context.report(Self.description, event: m.mapEvent, device: m.device,
                       message: "\(Describe.mapping(m)) covers \(hex(bytes.lowerBound))..\(hex(bytes.upperBound)) of the live \(Describe.allocation(a)) of \(a.device): "
                           + "coherent memory must not be mapped again as streaming memory (its CPU address has no usable struct page)",
                       history: a.history + m.history, shape: Describe.shape(m))
    }
}
