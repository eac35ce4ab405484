import Foundation

/// Everything the HTML report shows, computed here so the template only lays
/// it out. Values that come from the trace (device, task, marker text) stay
/// plain strings: the template escapes them.
public struct ReportPage {
    public struct Fact { public var label: String; public var value: String }
    public struct RuleCount { public var id: String; public var count: Int; public var severity: String }
    public struct Verdict {
        public var errors: Int, warnings: Int, notes: Int
        public var clean: Bool
        public var headline: String
        public var rules: [RuleCount]
        // Stored, not computed: Mustache reads values through Mirror.
        public var hasRules: Bool
    }
    public struct Mark { public var x: String; public var y: String; public var cls: String; public var title: String }
    public struct Tick { public var x: String; public var label: String }
    public struct Chart {
        public var width = 900, height = 140, plotTop = 10, plotBottom = 110
        public var mappings: String
        public var allocations: String
        public var maxMappings: Int
        public var maxAllocations: Int
        public var peakBytes: String
        public var marks: [Mark]
        public var ticks: [Tick]
        public var bucketSeconds: String
    }
    public struct Device {
        public var name: String
        public var path: String
        public var coherence: String
        public var counts: [Fact]
        public var limitations: [String]
        public var hasLimitations: Bool
        public var chart: Chart?
        public var hasChart: Bool
    }
    public struct Row { public var time: String; public var cpu: String; public var task: String; public var event: String; public var details: String }
    public struct FindingView {
        public var anchor: String
        public var rule: String
        public var ruleName: String
        public var severity: String
        public var severityRank: Int
        public var device: String
        public var time: String
        public var timeValue: String
        public var cpu: String
        public var task: String
        public var message: String
        public var occurrences: String?
        public var caveats: [String]
        public var marker: String?
        /// The call site's source line, a link when a --source-url template was given.
        public var location: LocationView?
        public var history: [Row]
        public var hasHistory: Bool
        public var stack: [String]
        public var hasStack: Bool
        public var fingerprint: String
    }
    public struct LocationView { public var text: String; public var href: String? }
    public struct RuleDoc { public var id: String; public var name: String; public var severity: String; public var summary: String; public var text: String }

    public var title: String
    public var facts: [Fact]
    public var verdict: Verdict
    public var devices: [Device]
    public var findings: [FindingView]
    public var hasFindings: Bool
    public var omitted: Int
    public var ruleDocs: [RuleDoc]
    public var hasRuleDocs: Bool
    public var severities: [String]
    public var ruleIDs: [String]
    public var generator: String
    public var stylesheet: String
    public var script: String

    /// Findings beyond this many are left to the JSON output: the page stays readable and small.
    public static let findingLimit = 500

    public init(document d: AnalysisDocument, sources: SourceLinks = .init()) {
        title = "dma-trace: " + (d.trace.path as NSString).lastPathComponent
        let span = d.firstTimestamp.flatMap { f in d.lastTimestamp.map { String(format: "%.6f .. %.6f s (%.3f s)", f, $0, $0 - f) } } ?? "?"
        let lost = d.lostGaps.isEmpty ? "none reported"
            : "\(d.lostGaps.count) gap(s), at least \(d.lostGaps.compactMap(\.count).reduce(0, +)) events"
        facts = [
            Fact(label: "Trace", value: d.trace.path),
            Fact(label: "Format", value: d.trace.format.rawValue + (d.trace.fileVersion.map { " v\($0)" } ?? "")),
            Fact(label: "Kernel", value: d.trace.kernelRelease ?? "not recorded"),
            Fact(label: "CPUs", value: d.trace.cpus.map(String.init) ?? "unknown"),
            Fact(label: "Time span", value: span),
            Fact(label: "Events", value: "\(d.dmaEvents) of \(d.records) records"),
            Fact(label: "Event generation", value: d.trace.generation.description),
        ] + (d.notices ?? []).map { Fact(label: "Note", value: $0) } + (d.iommuBalance.map { b in
            [Fact(label: "IOMMU map/unmap", value: "\(b.maps) / \(b.unmaps) (\(b.unmapsOfUnknownIOVA) unmaps of IOVAs not mapped in the trace, \(b.stillMapped) still mapped)")]
        } ?? []) + [
            Fact(label: "Lost events", value: lost),
        ]
        let s = d.summary
        var byRule: [String: (Int, Severity)] = [:]
        for f in d.findings {
            let old = byRule[f.rule] ?? (0, .note)
            byRule[f.rule] = (old.0 + 1, max(old.1, f.severity))
        }
        let headline = s.errors > 0 ? "\(s.errors) error(s): DMA-API bugs found"
            : s.warnings > 0 ? "\(s.warnings) warning(s) to look at" : "No warning or error"
        verdict = Verdict(errors: s.errors, warnings: s.warnings, notes: s.notes, clean: s.errors + s.warnings == 0,
                          headline: headline,
                          rules: byRule.sorted { ($0.value.1.rawValue, $0.value.0, $1.key) > ($1.value.1.rawValue, $1.value.0, $0.key) }
                            .map { RuleCount(id: $0.key, count: $0.value.0, severity: $0.value.1.description) },
                          hasRules: !byRule.isEmpty)
        let findingsByDevice = Dictionary(grouping: d.findings, by: \.device)
        devices = d.devices.map { dev in
            let p = dev.profile
            let chart = d.timeline.flatMap { Self.chart($0, device: p.name, end: d.lastTimestamp, findings: findingsByDevice[p.name] ?? []) }
            return Device(
                name: p.name, path: dev.path.rawValue, coherence: dev.coherence.rawValue,
                counts: [
                    Fact(label: "maps", value: "\(p.maps) (\(p.sgMaps) sg)"),
                    Fact(label: "unmaps", value: "\(p.unmaps)"),
                    Fact(label: "syncs cpu / device", value: "\(p.syncsForCPU) / \(p.syncsForDevice)"),
                    Fact(label: "bounces", value: "\(p.bounces)"),
                    Fact(label: "bytes mapped", value: byteString(p.bytesMapped)),
                    Fact(label: "peak live mappings", value: "\(p.peakLiveMappings)"),
                    Fact(label: "live at end", value: "\(p.liveMappings)"),
                    Fact(label: "dma_alloc_* / frees", value: "\(p.allocs) / \(p.frees)"),
                ],
                limitations: (dev.facts ?? []).map { "\($0.name): \($0.value) (\($0.confidence.rawValue): \($0.evidence))" } + dev.cannotCheck,
                hasLimitations: !dev.cannotCheck.isEmpty || !(dev.facts ?? []).isEmpty,
                chart: chart, hasChart: chart != nil)
        }
        let shown = d.findings.prefix(Self.findingLimit)
        findings = shown.enumerated().map { i, f in
            FindingView(
                anchor: "finding-\(i + 1)", rule: f.rule, ruleName: RuleRegistry.description(of: f.rule)?.name ?? f.rule,
                severity: f.severity.description, severityRank: f.severity.rawValue, device: f.device,
                time: String(format: "%.6f s", f.timestamp), timeValue: String(format: "%.9f", f.timestamp),
                cpu: "\(f.cpu)", task: f.pid >= 0 ? "\(f.task)-\(f.pid)" : "-", message: f.message,
                occurrences: f.occurrences > 1 ? "×\(f.occurrences)" : nil, caveats: f.caveats, marker: f.marker,
                location: f.location.map(sources.view),
                history: f.events.map { e in
                    Row(time: String(format: "%.6f", e.timestamp), cpu: "\(e.cpu)",
                        task: e.pid.map { "\(e.task ?? "")-\($0)" } ?? "-", event: e.event, details: e.details)
                },
                hasHistory: !f.events.isEmpty, stack: f.stack ?? [], hasStack: !(f.stack ?? []).isEmpty,
                fingerprint: f.fingerprint)
        }
        hasFindings = !findings.isEmpty
        omitted = d.findings.count - shown.count
        let used = Set(d.findings.map(\.rule))
        ruleDocs = RuleRegistry.descriptions.filter { used.contains($0.id) }.map { r in
            RuleDoc(id: r.id, name: r.name, severity: r.severity.description, summary: r.summary,
                    text: RuleDocs.installedPage(r).map(RuleDocs.prose) ?? r.summary)
        }
        hasRuleDocs = !ruleDocs.isEmpty
        severities = ["error", "warning", "note"]
        ruleIDs = used.sorted()
        generator = "dma-trace \(DMATraceVersion.current)"
        stylesheet = ReportAssets.stylesheet
        script = ReportAssets.script
    }

    static func chart(_ t: Timeline, device: String, end: Double?, findings: [AnalysisDocument.FindingJSON]) -> Chart? {
        guard let origin = t.origin else { return nil }
        // Draw only the buckets the trace reached, across the whole width.
        let reached = end.map { Int((UInt64($0 * 1e9) &- origin) / t.width) + 1 } ?? Timeline.bucketCount
        let buckets = Array(t.filled(device).prefix(max(1, min(reached, Timeline.bucketCount))))
        guard !buckets.isEmpty else { return nil }
        let width = 900.0, top = 10.0, bottom = 110.0, n = Double(buckets.count)
        let maxMappings = max(buckets.map(\.maxLiveMappings).max() ?? 0, 1)
        let maxAllocs = max(buckets.map(\.maxLiveAllocations).max() ?? 0, 1)
        func x(_ i: Int) -> Double { Double(i) / n * width }
        func y(_ v: Int, _ m: Int) -> Double { bottom - Double(v) / Double(m) * (bottom - top) }
        func line(_ value: (Timeline.Bucket) -> Int, _ m: Int) -> String {
            var pts: [String] = []
            for (i, b) in buckets.enumerated() {
                pts.append(String(format: "%.1f,%.1f", x(i), y(value(b), m)))
                pts.append(String(format: "%.1f,%.1f", x(i + 1), y(value(b), m)))
            }
            return pts.joined(separator: " ")
        }
        let span = Double(t.width) * n / 1e9
        let start = Double(origin) / 1e9
        let marks = findings.prefix(400).map { f -> Mark in
            let fx = min(max((f.timestamp - start) / span * width, 0), width)
            let row = f.severity == .error ? 20.0 : f.severity == .warning ? 45.0 : 70.0
            return Mark(x: String(format: "%.1f", fx), y: String(format: "%.0f", row), cls: f.severity.description,
                        title: "\(f.severity) \(f.rule) at \(String(format: "%.6f", f.timestamp)) s")
        }
        let ticks = (0...4).map { k -> Tick in
            Tick(x: String(format: "%.0f", Double(k) / 4 * width), label: String(format: "%.3f s", start + span * Double(k) / 4))
        }
        return Chart(mappings: line({ $0.maxLiveMappings }, maxMappings), allocations: line({ $0.maxLiveAllocations }, maxAllocs),
                     maxMappings: maxMappings, maxAllocations: maxAllocs,
                     peakBytes: byteString(buckets.map(\.maxLiveBytes).max() ?? 0), marks: Array(marks), ticks: ticks,
                     bucketSeconds: String(format: "%.4f", Double(t.width) / 1e9))
    }
}

/// How the HTML report names and links source lines: paths relative to `--source-root`,
/// links from `--source-url` (a template with {file} and {line}, e.g. a git web view).
public struct SourceLinks: Sendable {
    public var root: SourceRoot?
    public var urlTemplate: String?
    public init(root: SourceRoot? = nil, urlTemplate: String? = nil) {
        self.root = root
        self.urlTemplate = urlTemplate
    }

    /// Only web links: a template is the user's, but a `javascript:` href is never wanted.
    public static func isValidTemplate(_ t: String) -> Bool {
        (t.hasPrefix("https://") || t.hasPrefix("http://")) && t.contains("{file}")
    }

    func view(_ l: SourceLocation) -> ReportPage.LocationView {
        var shown = l
        let relative = root?.relativePath(l.file)
        if let relative { shown.file = relative }
        var href: String?
        if let t = urlTemplate, Self.isValidTemplate(t) {
            let path = relative ?? l.file
            let encoded = path.split(separator: "/", omittingEmptySubsequences: false)
                .map { $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? String($0) }
                .joined(separator: "/")
            href = t.replacingOccurrences(of: "{file}", with: encoded).replacingOccurrences(of: "{line}", with: "\(l.line)")
        }
        return ReportPage.LocationView(text: shown.text, href: href)
    }
}
