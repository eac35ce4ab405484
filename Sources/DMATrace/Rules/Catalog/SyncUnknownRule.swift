final class SyncUnknownRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.syncWithoutMapping]

    static let description = RuleDescription(
        id: "sync-unknown", name: "Sync of memory not mapped", severity: .error,
        summary: "A sync matches no live mapping: after its unmap (an error), or never mapped in the trace (a note when it may predate the trace).",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.1", dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.2", cpu: true, dir: "FROM_DEVICE", dma: "100000", size: 4096),
            ]),
            RuleExample(triggers: true, severity: .note, [
                Example.sync("1.2", cpu: true, dir: "FROM_DEVICE", dma: "100000", size: 4096),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.1", cpu: true, dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.2", dir: "FROM_DEVICE", dma: "100000", size: 4096),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .syncWithoutMapping(let e, let ctx) = fact else { return }
        switch ctx {
        case .alreadyReleased(let release, let original):
            let complete = e.device.map { context.model.historyComplete($0) } ?? false
            context.report(Self.description, severity: complete ? nil : .warning, event: e,
                           message: "\(e.kind.name) of \(e.kind.details) after the mapping was unmapped at \(formatSeconds(release.timestamp)) s: the driver touches memory it no longer owns",
                           history: (original.map { [$0] } ?? []) + [release, e], shape: Describe.shape(e),
                           caveats: complete ? [] : ["the device was active before the trace: a mapping of the same address made before tracing began would make this sync legitimate"],
                           scope: .anyCPUBefore)
        case .neverSeen(let mayPredate, _):
            context.reportNeverSeen(Self.description, e, mayPredate: mayPredate, verb: "syncs", thing: "mapping")
        case .mappingError, .partnerMayBeLost:
            return
        }
    }
}
