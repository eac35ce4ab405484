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
            // dma-buf export: dma_get_sgtable() of the allocation, mapped with SKIP_CPU_SYNC.
            RuleExample(triggers: true, severity: .note, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "f0000", size: 4096, attrs: "SKIP_CPU_SYNC"),
                Example.unmap("1.1", dir: "FROM_DEVICE", dma: "f0000", size: 4096, attrs: "SKIP_CPU_SYNC"),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "f1000", size: 512),
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "f1000", size: 512),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .overlapsCoherent(let m, let a, let bytes) = fact else { return }
        let what = "\(Describe.mapping(m)) covers \(hex(bytes.lowerBound))..\(hex(bytes.upperBound)) of the live \(Describe.allocation(a)) of \(a.device)"
        if m.attrs.contains(.skipCPUSync) {
            // The dma-buf export of coherent memory: dma_get_sgtable() takes the pages from the DMA
            // address and the importer maps them with DMA_ATTR_SKIP_CPU_SYNC, so no cache
            // maintenance runs through the streaming alias (dma-attributes.rst, SKIP_CPU_SYNC).
            context.report(Self.description, severity: .note, event: m.mapEvent, device: m.device,
                           message: "\(what), mapped with SKIP_CPU_SYNC: the dma-buf sharing pattern (dma_get_sgtable() of the allocation, mapped for an importer without cache maintenance); "
                               + "legal as long as nothing syncs this mapping (mapping.c calls dma_get_sgtable fundamentally unsafe where coherent memory is an uncached remap)",
                           history: a.history + m.history, shape: Describe.shape(m) + "|shared")
            return
        }
        // The allocation's physical memory was taken to be its bus address (dma-direct): sound when
        // the device's maps show dma-direct (dma == phys, or swiotlb bounces, which leave coherent
        // memory direct), only an inference when they show nothing.
        let profile = m.deviceProfile
        let weak = a.physAssumed && profile.directSegments == 0 && profile.bouncedMappings == 0
        context.report(Self.description, severity: weak ? .warning : nil, event: m.mapEvent, device: m.device,
                       message: "\(what): coherent memory must not be mapped again as streaming memory; the device already reaches it, and the streaming map's cache maintenance, bounce copy or second IOVA fights with the coherent mapping",
                       history: a.history + m.history, shape: Describe.shape(m),
                       caveats: weak ? [profile.pathFact.assumption + "; the allocation's bus address was taken as its physical address"] : [])
    }
}
