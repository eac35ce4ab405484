/// The outcome of auditing many traces, in input order whatever the scheduling.
public struct AuditResult: Sendable {
    /// What became of one trace. Only `analyzed` has a document.
    public enum Status: String, Sendable, Codable {
        case analyzed
        /// The file is not a trace we can read (the worker said so, exit 2).
        case unreadable
        /// The analysis itself failed: its worker crashed, was killed, timed out or printed garbage.
        case failed
    }

    public struct TraceOutcome: Sendable {
        public var path: String
        public var status: Status
        /// nil unless the status is `analyzed`.
        public var document: AnalysisDocument?
        /// Why there is no document, naming the file.
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
    /// The driver's source checkout: SARIF locations are relative to it (`--source-root`).
    public var sourceRoot: SourceRoot?

    public init(traces: [TraceOutcome], staleBaseline: [Baseline.Entry], rulesRun: [RuleDescription]) {
        self.traces = traces
        self.staleBaseline = staleBaseline
        self.rulesRun = rulesRun
    }

    public var allFindings: [AnalysisDocument.FindingJSON] { traces.flatMap(\.findings) }
    /// Every trace without a result, unreadable or failed.
    public var unreadable: [TraceOutcome] { traces.filter { $0.document == nil } }
    public var failed: [TraceOutcome] { traces.filter { $0.status == .failed } }

    /// Assembles per-trace documents (or errors) with the configuration and baseline applied.
    public static func assemble(_ raw: [(path: String, status: Status, document: AnalysisDocument?, error: String?)],
                                config: AuditConfig, baseline: Baseline?) -> AuditResult {
        let known = baseline?.fingerprints ?? []
        var matched = Set<String>()
        var outcomes: [TraceOutcome] = []
        for r in raw {
            guard let doc = r.document else {
                let status = r.status == .analyzed ? .failed : r.status
                outcomes.append(TraceOutcome(path: r.path, status: status, document: nil, error: r.error, findings: [], suppressed: [], baselined: 0))
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
            outcomes.append(TraceOutcome(path: r.path, status: .analyzed, document: doc, error: nil, findings: fresh, suppressed: suppressed,
                                         baselined: baselined))
        }
        let stale = (baseline?.entries ?? []).filter { !matched.contains($0.fingerprint) }
        let rules = RuleRegistry.descriptions.filter { !config.disabledRules.contains($0.id) }
        return AuditResult(traces: outcomes, staleBaseline: stale, rulesRun: rules)
    }
}
