import Foundation

/// The human report of `analyze`: devices first, then findings by rule, most severe first.
public struct TextReport {
    public var color: Bool
    public var showHistory: Int
    /// Source paths are shown relative to this checkout when the file is in it.
    public var sourceRoot: SourceRoot?

    public init(color: Bool, showHistory: Int = 12, sourceRoot: SourceRoot? = nil) {
        self.color = color
        self.showHistory = showHistory
        self.sourceRoot = sourceRoot
    }

    /// Our own colour codes only: trace-derived text goes through `e` first.
    private func paint(_ s: String, _ code: String) -> String { color ? "\u{1b}[\(code)m\(s)\u{1b}[0m" : s }
    private func e(_ s: String) -> String { TerminalText.escape(s) }

    private func badge(_ s: Severity) -> String {
        switch s {
        case .error: paint("error", "1;31")
        case .warning: paint("warning", "1;33")
        case .note: paint("note", "1;36")
        }
    }

    public func render(_ r: AnalysisResult, findings: [Finding]) -> String {
        var out: [String] = []
        let span = r.stats.firstTimestamp.flatMap { f in r.stats.lastTimestamp.map { formatSeconds($0 - f) } } ?? "?"
        let lost = r.lostGaps.isEmpty ? "no events lost" : "\(r.lostGaps.count) lost-event gap(s)"
        var header = ""
        if r.stats.unreadableLines > 0 { header += "; \(r.stats.unreadableLines) unreadable text line(s) skipped (-v shows them)" }
        if r.stats.malformedRecords > 0 { header += "; \(r.stats.malformedRecords) malformed record(s) skipped" }
        out.append(paint(e(r.facts.path), "1") + ": kernel \(e(r.facts.kernelRelease ?? "unknown")), \(r.facts.cpus.map { "\($0) CPUs" } ?? "CPUs unknown"), \(span) s, \(r.stats.dmaEvents) events, \(lost)\(header)")
        for notice in r.notices { out.append(paint("Note", "1") + ": " + e(notice)) }
        if let b = r.iommuBalance {
            out.append("IOMMU: \(b.maps) iommu:map, \(b.unmaps) iommu:unmap (\(b.unmapsOfUnknownIOVA) of IOVAs not mapped in the trace), \(b.stillMapped) IOVAs still mapped at the end")
        }
        out.append("")
        for w in r.debugInfoWarnings { out.append("debug info: \(w)") }
        if !r.debugInfoWarnings.isEmpty { out.append("") }
        out.append(paint("Devices", "1"))
        for d in r.devices {
            out.append("  \(paint(e(d.name), "1"))  \(d.path.rawValue), \(d.coherence.rawValue)")
            if !d.dmaEventsTraced {
                out.append("    bounces \(d.bounces)")
                for l in d.limitations { out.append("    cannot check: \(e(l))") }
                continue
            }
            for fact in d.facts { out.append("    fact: \(fact.name) \(e(fact.value)) (\(fact.confidence.rawValue): \(e(fact.evidence)))") }
            out.append("    maps \(d.maps) (sg \(d.sgMaps)), unmaps \(d.unmaps), syncs cpu/device \(d.syncsForCPU)/\(d.syncsForDevice), bounces \(d.bounces), failed maps \(d.failedMaps)")
            out.append("    \(byteString(d.bytesMapped)) mapped, peak \(d.peakLiveMappings) live mappings, \(d.liveMappings) live at end; dma_alloc_* \(d.allocs), frees \(d.frees), \(d.liveAllocations) live at end")
            for l in d.limitations { out.append("    cannot check: \(e(l))") }
        }
        let summary = AnalysisDocument.Summary.of(findings)
        out.append("")
        out.append(paint("Findings", "1") + ": \(summary.errors) error(s), \(summary.warnings) warning(s), \(summary.notes) note(s)")
        var byRule: [(String, [Finding])] = []
        for f in findings {
            if let i = byRule.firstIndex(where: { $0.0 == f.rule }) { byRule[i].1.append(f) } else { byRule.append((f.rule, [f])) }
        }
        for (rule, list) in byRule {
            let summaryLine = RuleRegistry.description(of: rule)?.summary ?? ""
            out.append("")
            out.append(paint("[\(rule)]", "1") + " \(summaryLine) (Docs/rules/\(rule).md)")
            for f in list {
                let times = f.occurrences > 1 ? " ×\(f.occurrences)" : ""
                out.append("  \(badge(f.severity))\(times) \(e(f.device)) at \(formatSeconds(f.timestamp)) s, cpu \(f.cpu), \(f.pid >= 0 ? "\(e(f.task))-\(f.pid)" : "-")")
                out.append("    \(e(f.message))")
                if var l = f.location {
                    if let rel = sourceRoot?.relativePath(l.file) { l.file = rel }
                    out.append("    at " + paint(e(l.text), "1"))
                }
                for c in f.caveats { out.append("    caveat: \(e(c))") }
                if let m = f.marker { out.append("    during marker: \(e(m))") }
                if !f.history.isEmpty && showHistory > 0 {
                    out.append("    history:")
                    let shown = f.history.suffix(showHistory)
                    if f.history.count > shown.count { out.append("      … \(f.history.count - shown.count) earlier event(s)") }
                    for event in shown { out.append("      \(e(event.line))") }
                }
                if let s = f.stack {
                    out.append("    stack:")
                    for frame in s.frames { out.append("      => \(e(frame))") }
                }
                out.append("    fingerprint \(f.fingerprint)")
            }
        }
        return out.joined(separator: "\n") + "\n"
    }
}

func byteString(_ b: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(b)
    var i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    return i == 0 ? "\(b) B" : String(format: "%.1f %@", v, units[i])
}
