/// One judged problem, with the evidence a driver developer needs.
public struct Finding: Sendable {
    public var rule: String
    public var severity: Severity
    public var device: String
    /// The offending event (for leaks: the map or alloc that leaked), nanoseconds.
    public var timestamp: UInt64
    public var cpu: Int32
    public var task: String
    public var pid: Int32
    public var message: String
    /// The buffer's history: related events, oldest first.
    public var history: [DMAEvent]
    public var stack: KernelStack?
    /// The driver function the evidence points at (first stack frame outside the DMA core).
    public var callSite: String?
    /// Stable across runs and recordings: rule, device, call site or the mapping's shape.
    /// Never the line number: a finding whose line moved keeps its baseline entry.
    public var fingerprint: String
    /// The driver's source line, when debug info resolved the call site (`--debuginfo`).
    public var location: SourceLocation?
    /// What the fingerprint falls back on without a call site.
    var shape: String = ""
    /// Why the severity was lowered, or other caveats.
    public var caveats: [String] = []
    /// The trace_marker text in force when the offending event happened.
    public var marker: String?
    /// How many occurrences this finding stands for (grouped notes).
    public var occurrences: Int = 1

    /// Which lost-event gaps could explain this finding.
    var lostEventScope: LostEventScope = .window

    enum LostEventScope {
        /// A gap on any CPU within the evidence's time span (an unseen unmap or sync,
        /// possibly from interrupt context on another CPU).
        case window
        /// A gap on any CPU before the finding (an unseen map or alloc).
        case anyCPUBefore
        /// A gap on any CPU after the evidence began (an unseen unmap or free: leaks).
        case anyCPUAfter
    }

    public var seconds: Double { Double(timestamp) / 1e9 }
}

/// Collects findings for the rules and gives them what they may read of the model.
public final class RuleContext {
    public let model: DMAModel
    public let traceFacts: TraceFacts
    var findings: [Finding] = []
    var downgradesApplied = false
    var downgradedCount = 0
    private var severityOverrides: [String: Severity]

    init(model: DMAModel, traceFacts: TraceFacts, severityOverrides: [String: Severity] = [:]) {
        self.model = model
        self.traceFacts = traceFacts
        self.severityOverrides = severityOverrides
    }

    /// Reports a finding anchored on `event`. `severity` nil means the rule's default.
    func report(_ rule: RuleDescription, severity: Severity? = nil, event: DMAEvent, device: String? = nil,
                message: String, history: [DMAEvent], stack: KernelStack? = nil, shape: String,
                caveats: [String] = [], occurrences: Int = 1, scope: Finding.LostEventScope = .window) {
        let effectiveStack = stack ?? event.stack ?? history.lazy.compactMap(\.stack).first
        let site = Self.callSite(effectiveStack)
        let dev = device ?? event.device ?? "-"
        var sev = severity ?? rule.severity
        if let override = severityOverrides[rule.id], severity == nil || severity == rule.severity { sev = override }
        var f = Finding(rule: rule.id, severity: sev, device: dev, timestamp: event.timestamp, cpu: event.cpu,
                        task: event.task, pid: event.pid, message: message, history: history.sorted { $0.timestamp < $1.timestamp },
                        stack: effectiveStack, callSite: site,
                        fingerprint: Fingerprint.make([rule.id, dev, site ?? shape]))
        f.shape = shape
        f.caveats = caveats
        f.occurrences = occurrences
        f.lostEventScope = scope
        f.marker = model.marker(at: event.timestamp)
        findings.append(f)
    }

    /// The first frame that is not DMA-API, IOMMU or tracing machinery: the driver's call.
    static func callSite(_ stack: KernelStack?) -> String? {
        guard let frames = stack?.frames else { return nil }
        for frame in frames {
            let name = frame.split(separator: "+").first.map(String.init) ?? frame
            if isMachinery(name) { continue }
            // An unsymbolized frame (a module unloaded before trace-cmd saved kallsyms) is a
            // load address that changes every boot: no call site rather than an unstable one.
            return name.hasPrefix("0x") ? nil : name
        }
        return nil
    }
}

extension RuleContext {
    static let machineryPrefixes = ["dma_", "__dma", "dmam_", "debug_dma", "iommu_", "__iommu", "swiotlb", "trace_", "__trace",
                                    "ftrace", "perf_", "__traceiter", "intel_iommu", "arm_smmu", "__arm_smmu", "sg_", "__sg"]

    /// DMA-API, IOMMU, scatterlist and tracing code: never the driver's call site.
    static func isMachinery(_ function: String) -> Bool {
        machineryPrefixes.contains { function.hasPrefix($0) }
    }

    /// Source files of the same machinery, for inlined helpers whose names say nothing
    /// (a kernel tree's relative path, or a headers package's absolute one).
    static func isMachinery(file: String) -> Bool {
        let f = file.hasPrefix("./") ? String(file.dropFirst(2)) : file
        return ["kernel/dma/", "drivers/iommu/", "kernel/trace/", "lib/scatterlist.c"].contains { f.hasPrefix($0) || f.contains("/" + $0) }
            || ["include/linux/dma-", "include/linux/scatterlist.h", "include/trace/"].contains { f.hasPrefix($0) || f.contains("/" + $0) }
    }
}

extension Finding {
    /// Moves the finding to the source line debug info found: the call site becomes the
    /// function there, and the fingerprint follows the function (never the line).
    mutating func locate(_ location: SourceLocation) {
        self.location = location
        if let function = location.function { callSite = function }
        fingerprint = Fingerprint.make([rule, device, callSite ?? shape])
    }
}

/// FNV-1a over the identifying parts: stable across runs, machines and Swift versions
/// (Swift's own Hasher is seeded per process).
enum Fingerprint {
    static func make(_ parts: [String]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in parts.joined(separator: "\u{1f}").utf8 {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01b3
        }
        let s = String(h, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

extension RuleContext {
    /// A finding as it stands now: lowered if a gap seen so far touches its evidence.
    func provisional(_ f: Finding) -> Finding {
        var f = f
        if let gap = downgradingGap(f, model.gaps) {
            f.caveats.append(Self.caveat(gap))
            f.severity = .note
        }
        return f
    }

    private func downgradingGap(_ f: Finding, _ gaps: [LostGap]) -> LostGap? {
        guard f.rule != "events-lost" else { return nil }
        let times = f.history.map(\.timestamp) + [f.timestamp]
        let lo = times.min() ?? f.timestamp
        let hi = times.max() ?? f.timestamp
        return gaps.first { gap in
            switch f.lostEventScope {
            // A gap opens after its CPU's last record: one that opens at the finding's
            // own last event cannot hide anything the finding depends on.
            case .anyCPUBefore: return (gap.from ?? 0) < hi
            case .anyCPUAfter: return gap.to > lo
            case .window: return gap.to > lo && (gap.from ?? 0) < hi
            }
        }
    }

    private static func caveat(_ gap: LostGap) -> String {
        let lost = gap.count.map { "\($0) events" } ?? "an unknown number of events"
        let whereLost = gap.cpu >= 0 ? "CPU \(gap.cpu)" : "the trace"
        return "\(whereLost) lost \(lost) before \(formatSeconds(gap.to)) s, within this finding's evidence: a missing map, unmap or sync could explain it"
    }

    /// Lowers every finding whose evidence overlaps a lost-event gap to a note, once.
    /// Returns how many were touched.
    @discardableResult
    func applyLostEventDowngrades() -> Int {
        guard !downgradesApplied else { return downgradedCount }
        downgradesApplied = true
        let gaps = model.gaps
        guard !gaps.isEmpty else { return 0 }
        for i in findings.indices {
            guard let gap = downgradingGap(findings[i], gaps) else { continue }
            findings[i].caveats.append(Self.caveat(gap))
            // Only maybe true: a lost map, unmap or sync explains it as well as a driver bug does.
            findings[i].severity = .note
            downgradedCount += 1
        }
        return downgradedCount
    }
}
