final class FreeUnknownRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.freeWithoutAllocation]

    static let description = RuleDescription(
        id: "free-unknown", name: "Free of memory never allocated", severity: .error,
        summary: "A dma_free_* matches no live allocation: never allocated in the trace, or already freed.",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.free("1.0", dma: "f0000", size: 4096, virt: "0xffff8880000f0000"),
                Example.free("1.1", dma: "f0000", size: 4096, virt: "0xffff8880000f0000"),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.free("1.0", dma: "f0000", size: 4096, virt: "0xffff8880000f0000"),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .freeWithoutAllocation(let e, let ctx) = fact else { return }
        switch ctx {
        case .alreadyReleased(let previous, _):
            context.report(Self.description, event: e,
                           message: "\(e.kind.name) of \(e.kind.details) frees memory already freed at \(formatSeconds(previous.timestamp)) s (double free)",
                           history: [previous, e], shape: Describe.shape(e), scope: .anyCPUBefore)
        case .neverSeen(let mayPredate, _):
            context.reportNeverSeen(Self.description, e, mayPredate: mayPredate, verb: "frees", thing: "allocation")
        case .mappingError, .partnerMayBeLost:
            return
        }
    }
}
