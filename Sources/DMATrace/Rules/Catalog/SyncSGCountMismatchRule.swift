final class SyncSGCountMismatchRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.synced]

    static let description = RuleDescription(
        id: "sync-sg-count-mismatch", name: "sg sync with another entry count", severity: .error,
        summary: "dma_sync_sg_* must get the nents passed to dma_map_sg.",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.mapSG("1.0", dir: "FROM_DEVICE", phys: ["100000", "101000"], dma: ["100000", "101000"], sizes: [4096, 4096]),
                "1.1 dma_sync_sg_for_cpu: \(Example.dev) dir=FROM_DEVICE dma_addrs={0x100000} sizes={4096}",
                Example.unmapSG("1.2", dir: "FROM_DEVICE", phys: ["100000", "101000"]),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.mapSG("1.0", dir: "FROM_DEVICE", phys: ["100000", "101000"], dma: ["100000", "101000"], sizes: [4096, 4096]),
                "1.1 dma_sync_sg_for_cpu: \(Example.dev) dir=FROM_DEVICE dma_addrs={0x100000,0x101000} sizes={4096,4096}",
                Example.unmapSG("1.2", dir: "FROM_DEVICE", phys: ["100000", "101000"]),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .synced(let m, let s) = fact, let counts = s.entriesMismatch else { return }
        context.report(Self.description, event: s.event,
                       message: "syncs an sg list with a different entry count [map count=\(counts.mapped)] [sync count=\(counts.synced)] for the \(Describe.mapping(m))",
                       history: m.history, shape: Describe.shape(m))
    }
}
