final class UnmapUnknownRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.unmapWithoutMapping]

    static let description = RuleDescription(
        id: "unmap-unknown", name: "Unmap of memory never mapped", severity: .error,
        summary: "An unmap matches no mapping in the trace (a note when the mapping may predate the trace).",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "100000", size: 4096),
            ]),
            // No probe in the trace: the device was busy before tracing began.
            RuleExample(triggers: true, severity: .note, [
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "100000", size: 4096),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "100000", size: 4096),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .unmapWithoutMapping(let e, .neverSeen(let mayPredate, let near)) = fact else { return }
        let inside = near.map { "; the address lies inside the \(Describe.mapping($0)), but unmaps must use the address the map returned" } ?? ""
        if mayPredate {
            context.report(Self.description, severity: .note, event: e,
                           message: "\(e.kind.name) of \(e.kind.details) matches no mapping in this trace; the device was active before the trace began, so it was most likely mapped earlier\(inside)",
                           history: [e], shape: Describe.shape(e), scope: .anyCPUBefore)
        } else {
            context.report(Self.description, event: e,
                           message: "unmaps DMA memory it has not mapped: \(e.kind.name) of \(e.kind.details), and the trace shows the driver from its first allocation\(inside)",
                           history: [e] + (near.map { $0.history } ?? []), shape: Describe.shape(e), scope: .anyCPUBefore)
        }
    }
}
