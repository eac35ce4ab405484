/// The trace lost events: says how many, where, and which findings that touches.
final class EventsLostRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.eventsLost]

    static let description = RuleDescription(
        id: "events-lost", name: "Events lost", severity: .warning,
        summary: "The ring buffer dropped events; findings that lost events could explain are lowered to notes.",
        examples: [
            RuleExample(triggers: true, severity: .warning, [
                Example.probe,
                "CPU:0 [LOST 12 EVENTS]",
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "100000", size: 4096),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "100000", size: 4096),
            ]),
        ])

    private var gaps: [(LostGap, DMAEvent)] = []

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        if case .eventsLost(let gap) = fact {
            gaps.append((gap, DMAEvent(timestamp: gap.to, cpu: gap.cpu, pid: -1, task: "", device: nil,
                                       kind: .lostEvents(count: gap.count))))
        }
    }

    func finish(_ context: RuleContext) {
        let touched = context.applyLostEventDowngrades()
        guard let first = gaps.first else { return }
        let counted = gaps.compactMap(\.0.count).reduce(0, +)
        let unknown = gaps.filter { $0.0.count == nil }.count
        let cpus = Set(gaps.map(\.0.cpu)).sorted().map(String.init).joined(separator: ",")
        context.report(Self.description, event: first.1, device: "-",
                       message: "the trace lost events in \(gaps.count) gap(s) on CPU \(cpus): at least \(counted) events"
                           + (unknown > 0 ? ", plus \(unknown) gap(s) of unknown size" : "")
                           + "; \(touched) finding(s) that the lost events could explain were lowered to notes. Record with a larger buffer (trace-cmd record -b) to check everything.",
                       history: gaps.prefix(20).map(\.1), shape: "events-lost", occurrences: gaps.count)
    }
}
