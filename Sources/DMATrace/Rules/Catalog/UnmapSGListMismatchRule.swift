/// dma_unmap_sg must get the list that was mapped: kernel/dma/debug.c debug_dma_unmap_sg()
/// checks every entry ("frees DMA memory with different CPU address").
final class UnmapSGListMismatchRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.unmapSGEntryMismatch]

    static let description = RuleDescription(
        id: "unmap-sg-list-mismatch", name: "dma_unmap_sg of another list", severity: .error,
        summary: "dma_unmap_sg is given a list whose entries differ from the list dma_map_sg mapped.",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.mapSG("1.0", dir: "FROM_DEVICE", phys: ["100000", "105000"], dma: ["100000", "105000"], sizes: [4096, 4096]),
                Example.unmapSG("1.1", dir: "FROM_DEVICE", phys: ["100000", "108000"]),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.mapSG("1.0", dir: "FROM_DEVICE", phys: ["100000", "105000"], dma: ["100000", "105000"], sizes: [4096, 4096]),
                Example.unmapSG("1.1", dir: "FROM_DEVICE", phys: ["100000", "105000"]),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .unmapSGEntryMismatch(let m, let unmap, let index, let mapped, let unmapped) = fact else { return }
        context.report(Self.description, event: unmap,
                       message: "unmaps an sg list that is not the one mapped: entry \(index) differs [map phys=\(hex(mapped))] [unmap phys=\(hex(unmapped))] for the \(Describe.mapping(m)); "
                           + "the kernel unmaps (and on a non-coherent or bounced path syncs) the entries it is given, so the mapped pages stay mapped and others are touched",
                       history: m.history + [unmap], shape: Describe.shape(m) + "|entries")
    }
}
