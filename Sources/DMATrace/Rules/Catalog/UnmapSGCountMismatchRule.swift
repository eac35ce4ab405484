final class UnmapSGCountMismatchRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.unmappedSG]

    static let description = RuleDescription(
        id: "unmap-sg-count-mismatch", name: "dma_unmap_sg with another entry count", severity: .error,
        summary: "dma_unmap_sg must get the nents passed to dma_map_sg, not the count it returned.",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.mapSG("1.0", dir: "TO_DEVICE", phys: ["100000", "101000"], dma: ["100000", "101000"], sizes: [4096, 4096]),
                Example.unmapSG("1.1", dir: "TO_DEVICE", phys: ["100000"]),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.mapSG("1.0", dir: "TO_DEVICE", phys: ["100000", "101000"], dma: ["100000", "101000"], sizes: [4096, 4096]),
                Example.unmapSG("1.1", dir: "TO_DEVICE", phys: ["100000", "101000"]),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .unmapped(let m, let unmap, _, _, .scatterGather, let entries?) = fact, m.isScatterGather,
              // Capped arrays without the full count (older text) cannot be compared.
              !(m.truncated && m.inputEntries == m.entryPhys.count), entries != m.inputEntries else { return }
        context.report(Self.description, event: unmap,
                       message: "unmaps an sg list with a different entry count [map count=\(m.inputEntries)] [unmap count=\(entries)]"
                           + (entries == m.segments.count ? " (the count dma_map_sg returned, not the nents it was given)" : "")
                           + " for the \(Describe.mapping(m))",
                       history: m.history + [unmap], shape: Describe.shape(m))
    }
}
