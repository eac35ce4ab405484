final class SyncDirectionMismatchRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.synced]

    static let description = RuleDescription(
        id: "sync-direction-mismatch", name: "Sync with a different direction", severity: .error,
        summary: "A sync names another DMA direction than the mapping (BIDIRECTIONAL mappings excepted).",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.1", cpu: true, dir: "BIDIRECTIONAL", dma: "100000", size: 4096),
                Example.unmap("1.2", dir: "FROM_DEVICE", dma: "100000", size: 4096),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "BIDIRECTIONAL", dma: "100000", size: 4096),
                Example.sync("1.1", cpu: true, dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.2", dir: "BIDIRECTIONAL", dma: "100000", size: 4096),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .synced(let m, let s) = fact, m.direction != .bidirectional, s.sync.direction != m.direction else { return }
        // Alloc events of some 6.13-6.17 kernels carry a garbage dir (fixed in 6.18): an
        // unreadable allocation direction is no evidence.
        if m.isAllocation && m.direction == nil { return }
        // The two rules below say the same thing more precisely.
        if SyncForCPUToDeviceRule.applies(m, s) || SyncForDeviceFromDeviceRule.applies(m, s) { return }
        context.report(Self.description, event: s.event,
                       message: "syncs DMA memory with a different direction [mapped with \(Describe.dir(m.direction))] [synced with \(Describe.dir(s.sync.direction))] for the \(Describe.mapping(m))",
                       history: m.history, shape: Describe.shape(m))
    }
}
