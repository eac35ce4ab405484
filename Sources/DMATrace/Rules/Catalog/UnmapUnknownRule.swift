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
        if case .unmapWithoutMapping(let e, .partnerMayBeLost(let gap, let near)) = fact {
            let lost = gap.count.map { "\($0) events" } ?? "an unknown number of events"
            context.report(Self.description, severity: .note, event: e,
                           message: "\(e.kind.name) of \(e.kind.details) matches no live list exactly; the live \(Describe.mapping(near)) shares its first page but not its entries or count, "
                               + "and CPU \(gap.cpu) lost \(lost) before \(formatSeconds(gap.to)) s: the real partner of this unmap was most likely the map that was lost",
                           history: near.history + [e], shape: Describe.shape(e), scope: .anyCPUBefore)
            return
        }
        guard case .unmapWithoutMapping(let e, .neverSeen(let mayPredate, let near)) = fact else { return }
        let inside = near.map { "; the address lies inside the \(Describe.mapping($0)), but unmaps must use the address the map returned" } ?? ""
        context.reportNeverSeen(Self.description, e, mayPredate: mayPredate, verb: "unmaps", thing: "mapping",
                                extra: inside, history: near.map { $0.history } ?? [])
    }
}
