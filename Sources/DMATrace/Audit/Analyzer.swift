/// Runs one trace through ingest, the model and the rules.
public struct AnalysisOptions: Sendable {
    /// Rule ids to skip.
    public var disabledRules: Set<String> = []
    public var severityOverrides: [String: Severity] = [:]
    /// Record live mappings and allocations over time (for the HTML report).
    public var timeline = false
    /// Debug info for resolving findings' stacks to source lines (`--debuginfo`).
    public var debugInfo = DebugInfoOptions()
    public init() {}
}

public struct AnalysisResult: Sendable {
    public var facts: TraceFacts
    public var stats: IngestStats
    public var devices: [DeviceProfile]
    /// Sorted: most severe first, then by time.
    public var findings: [Finding]
    public var lostGaps: [LostGap]
    public var linearMapOffset: UInt64?
    public var timeline: Timeline?
    public var iommuBalance: IOMMUBalance?
    /// Said up front: what the trace cannot show at all (a kernel without dma events).
    public var notices: [String] { facts.dmaEventsNotice.map { [$0] } ?? [] }
    /// Debug-info files refused or skipped for this trace, one sentence each.
    public var debugInfoWarnings: [String] = []
}

public enum Analyzer {
    public static func analyze(path: String, options: AnalysisOptions = .init(),
                               textOptions: TextTraceReader.Options = .init()) throws -> AnalysisResult {
        try analyze(source: TraceOpener.open(path: path, options: textOptions), options: options)
    }

    /// `onFinding` gets each finding as soon as a rule reports it (end-of-trace findings after
    /// the last event), with the lost-event caveat of the gaps seen so far; the result holds
    /// them all, judged against every gap.
    public static func analyze(source: DMAEventSource, options: AnalysisOptions = .init(),
                               onFinding: ((Finding) -> Void)? = nil) throws -> AnalysisResult {
        let rules = RuleRegistry.instantiate { !options.disabledRules.contains($0) }
        let router = FactRouter(rules)
        let model = DMAModel(kernelRelease: source.facts.kernelRelease) { [router] fact in router.deliver(fact) }
        // The context holds the model and the model's sink the router: the router must not hold
        // the context strongly, or every analysis in a process (analyze A B C, the tests) keeps
        // its whole model alive. This function holds it until the router is done.
        let context = RuleContext(model: model, traceFacts: source.facts, severityOverrides: options.severityOverrides)
        router.context = context
        defer { router.context = nil }
        var timeline = options.timeline ? Timeline() : nil
        // Opened before the replay so a bad --debuginfo fails at once; only the findings'
        // stacks are resolved, after it: debug info costs nothing per event.
        let resolver = options.debugInfo.isEmpty ? nil
            : try StackResolver(options: options.debugInfo, kernelRelease: source.facts.kernelRelease)
        var streamed = 0
        let stream = {
            guard let onFinding, context.findings.count > streamed else { return }
            for f in context.findings[streamed...] { onFinding(context.provisional(f)) }
            streamed = context.findings.count
        }
        let stats = try EventPipe.run(source) { (event: consuming DMAEvent) in
            let drawn = timeline != nil && event.device != nil, at = event.timestamp
            model.apply(consume event)
            if drawn, let p = model.lastTouchedProfile { timeline!.note(at: at, p) }
            stream()
        }
        for rule in rules { rule.finish(context) }
        stream()
        context.applyLostEventDowngrades()
        var findings = context.findings.sorted {
            ($0.severity.rawValue, $1.timestamp, $1.rule) > ($1.severity.rawValue, $0.timestamp, $0.rule)
        }
        var warnings: [String] = []
        if let resolver {
            resolver.kallsymsModules = source.kallsymsModules()
            for i in findings.indices {
                if let stack = findings[i].stack, let location = resolver.locate(stack) { findings[i].locate(location) }
            }
            warnings = resolver.warnings
        }
        var result = AnalysisResult(facts: source.facts, stats: stats, devices: model.deviceProfiles, findings: findings,
                                    lostGaps: model.gaps, linearMapOffset: model.linearMapOffset?.offset, timeline: timeline,
                                    iommuBalance: model.iommuBalance)
        result.debugInfoWarnings = warnings
        return result
    }
}

/// Hands each fact to the rules that asked for its kind: most facts concern few rules, and
/// every map and unmap makes one.
///
/// Calls cost no reference counting: iterating an array of rules retained and released each
/// rule, the kind's array and the context on every fact (13 atomic pairs per map/unmap pair,
/// the largest single source of them in the replay). The rules array keeps the rules alive;
/// the slots name them unretained, with their type for the call.
final class FactRouter {
    private struct Slot {
        let rule: Unmanaged<AnyObject>
        let type: any DMARule.Type
    }

    private let rules: [DMARule]
    /// All slots, grouped by fact kind; `bounds[k] ..< bounds[k + 1]` are kind k's.
    private let slots: UnsafeMutableBufferPointer<Slot>
    private let bounds: UnsafeMutableBufferPointer<Int>
    /// The analysis holds the context for as long as the replay runs.
    private var unmanagedContext: Unmanaged<RuleContext>?

    var context: RuleContext? {
        get { unmanagedContext?.takeUnretainedValue() }
        set { unmanagedContext = newValue.map { Unmanaged.passUnretained($0) } }
    }

    init(_ rules: [DMARule]) {
        self.rules = rules
        let kinds = ModelFact.Kind.allCases
        var grouped: [Slot] = []
        bounds = .allocate(capacity: kinds.count + 1)
        for kind in kinds {
            bounds[kind.rawValue] = grouped.count
            for rule in rules where type(of: rule).interests.contains(kind) {
                grouped.append(Slot(rule: Unmanaged.passUnretained(rule as AnyObject), type: type(of: rule)))
            }
        }
        bounds[kinds.count] = grouped.count
        slots = .allocate(capacity: max(grouped.count, 1))
        _ = slots.initialize(from: grouped)
    }

    deinit {
        slots.deallocate()
        bounds.deallocate()
    }

    func deliver(_ fact: ModelFact) {
        guard let unmanagedContext else { return }
        let k = fact.kind.rawValue
        unmanagedContext._withUnsafeGuaranteedRef { context in
            for i in bounds[k] ..< bounds[k + 1] {
                let slot = slots[i]
                slot.type.observe(slot.rule, fact, context)
            }
        }
    }
}

extension DMARule {
    /// Calls `observe` on a rule the router holds unretained (the router's array owns it).
    @inline(__always)
    static func observe(_ rule: Unmanaged<AnyObject>, _ fact: ModelFact, _ context: RuleContext) {
        rule._withUnsafeGuaranteedRef { unsafeDowncast($0, to: Self.self).observe(fact, context) }
    }
}
