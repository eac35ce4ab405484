/// Events that contradict themselves: noted, never applied to the model.
final class TraceAnomalyRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.anomaly]

    static let description = RuleDescription(
        id: "trace-anomaly", name: "Self-contradictory event", severity: .note,
        summary: "An event contradicts itself (size 0, a range past 2^64, sg arrays that disagree); what cannot be applied is left out of the model.",
        examples: [
            RuleExample(triggers: true, severity: .note, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "100000", size: 0),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "100000", size: 4096),
            ]),
        ])

    private var byReason: [String: (first: DMAEvent, count: Int)] = [:]

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .anomaly(let e, let reason, let applied) = fact else { return }
        let key = (e.device ?? "-") + "|" + reason.prefix(while: { $0 != ":" }) + (applied ? "|applied" : "|skipped")
        if let existing = byReason[key] {
            byReason[key] = (existing.first, existing.count + 1)
        } else {
            byReason[key] = (e, 1)
        }
    }

    func finish(_ context: RuleContext) {
        for (key, entry) in byReason.sorted(by: { $0.value.first.timestamp < $1.value.first.timestamp }) {
            let parts = key.split(separator: "|")
            let reason = parts.count > 1 ? String(parts[1]) : ""
            let fate = key.hasSuffix("|applied") ? "they were still applied as far as they are consistent" : "they were not applied to the model"
            let what = reason == "out of time order" ? "came \(reason), beyond the reorder window" : "contradict themselves (\(reason))"
            context.report(Self.description, event: entry.first,
                           message: "\(entry.count) event(s) \(what), e.g. \(entry.first.kind.name) \(entry.first.kind.details); \(fate)",
                           history: [entry.first], shape: reason, occurrences: entry.count)
        }
    }
}
