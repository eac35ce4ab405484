/// A translated dma address handed out again while the model still has it live.
final class DMAAddressReuseRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.dmaAddressReuse]

    static let description = RuleDescription(
        id: "dma-address-reuse", name: "DMA address reused while mapped", severity: .warning,
        summary: "A new mapping got an IOVA or bounce slot still covered by a live mapping of the same device.",
        examples: [
            RuleExample(triggers: true, severity: .warning, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "fffff000", size: 4096, phys: "200000"),
                Example.map("1.1", dir: "FROM_DEVICE", dma: "fffff000", size: 4096, phys: "300000"),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "fffff000", size: 4096, phys: "200000"),
                Example.unmap("1.1", dir: "FROM_DEVICE", dma: "fffff000", size: 4096),
                Example.map("1.2", dir: "FROM_DEVICE", dma: "fffff000", size: 4096, phys: "300000"),
                Example.unmap("1.3", dir: "FROM_DEVICE", dma: "fffff000", size: 4096),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .dmaAddressReuse(let new, let old) = fact else { return }
        context.report(Self.description, event: new.mapEvent, device: new.device,
                       message: "\(Describe.mapping(new)) reuses a dma address of the \(Describe.mapping(old)), which was never unmapped in the trace: "
                           + "the kernel released it, so its unmap was lost, went through a path the trace does not show, or was issued with other parameters",
                       history: old.history + [new.mapEvent], shape: Describe.shape(new),
                       caveats: new.deviceProfile.pathFact.confidence == .weak ? [new.deviceProfile.pathFact.assumption] : [],
                       scope: .anyCPUBefore)
    }
}
