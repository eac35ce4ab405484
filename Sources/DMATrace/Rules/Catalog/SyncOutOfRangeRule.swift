final class SyncOutOfRangeRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.synced]

    static let description = RuleDescription(
        id: "sync-out-of-range", name: "Sync outside the mapping", severity: .error,
        summary: "A sync covers bytes beyond the end of the mapping it starts in.",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 2048),
                Example.sync("1.1", cpu: true, dir: "FROM_DEVICE", dma: "100400", size: 2048),
                Example.unmap("1.2", dir: "FROM_DEVICE", dma: "100000", size: 2048),
            ]),
            // A partial sync inside the mapping (page_pool, dma_sync_single_range_for_cpu).
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.1", cpu: true, dir: "FROM_DEVICE", dma: "100040", size: 1500),
                Example.unmap("1.2", dir: "FROM_DEVICE", dma: "100000", size: 4096),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .synced(let m, let s) = fact, s.outOfRange else { return }
        context.report(Self.description, event: s.event,
                       message: "\(Describe.syncName(s.sync)) of \(s.event.kind.details) reaches outside the \(Describe.mapping(m)) [mapping size=\(m.size) bytes]",
                       history: m.history, shape: Describe.shape(m))
    }
}
