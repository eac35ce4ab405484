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
        context.reportNeverSeen(Self.description, e, mayPredate: mayPredate, verb: "unmaps", thing: "mapping",
                                extra: inside, history: near.map { $0.history } ?? [])
    }
}
