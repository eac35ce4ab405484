/// The outcome of auditing many traces, in input order whatever the scheduling.
public struct AuditResult: Sendable {
    public struct TraceOutcome: Sendable {
        public var path: String
        /// nil when the trace could not be read.
        public var document: AnalysisDocument?
        public var error: String?
        /// Findings after configuration and baseline.
        public var findings: [AnalysisDocument.FindingJSON]
        public var suppressed: [(AnalysisDocument.FindingJSON, AuditConfig.Suppression)]
        public var baselined: Int
    }

    public var traces: [TraceOutcome]
    /// Baseline entries that no trace produced any more.
    public var staleBaseline: [Baseline.Entry]
    public var rulesRun: [RuleDescription]

    public init(traces: [TraceOutcome], staleBaseline: [Baseline.Entry], rulesRun: [RuleDescription]) {
        self.traces = traces
        self.staleBaseline = staleBaseline
        self.rulesRun = rulesRun
    }

    public var allFindings: [AnalysisDocument.FindingJSON] { traces.flatMap(\.findings) }
    public var unreadable: [TraceOutcome] { traces.filter { $0.document == nil } }

    /// Assembles per-trace documents (or errors) with the configuration and baseline applied.
    public static func assemble(_ raw: [(path: String, document: AnalysisDocument?, error: String?)],
                                config: AuditConfig, baseline: Baseline?) -> AuditResult {
        let known = baseline?.fingerprints ?? []
        var matched = Set<String>()
        var outcomes: [TraceOutcome] = []
        for r in raw {
            guard let doc = r.document else {
                outcomes.append(TraceOutcome(path: r.path, document: nil, error: r.error, findings: [], suppressed: [], baselined: 0))
                continue
            }
            let (kept, suppressed) = config.apply(doc.findings)
            var fresh: [AnalysisDocument.FindingJSON] = []
            var baselined = 0
            for f in kept {
                if known.contains(f.fingerprint) {
                    matched.insert(f.fingerprint)
                    baselined += 1
                } else {
                    fresh.append(f)
                }
            }
            outcomes.append(TraceOutcome(path: r.path, document: doc, error: nil, findings: fresh, suppressed: suppressed,
                                         baselined: baselined))
        }
        let stale = (baseline?.entries ?? []).filter { !matched.contains($0.fingerprint) }
        let rules = RuleRegistry.descriptions.filter { !config.disabledRules.contains($0.id) }
        return AuditResult(traces: outcomes, staleBaseline: stale, rulesRun: rules)
    }
}
