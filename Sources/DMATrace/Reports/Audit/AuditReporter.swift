import Foundation

/// One output format of `audit`: SwiftLint's reporter registry.
public protocol AuditReporter {
    static var identifier: String { get }
    static var summary: String { get }
    static func render(_ result: AuditResult) throws -> String
}

public enum AuditReporters {
    public static var all: [AuditReporter.Type] {
        [AuditTextReporter.self, AuditJSONReporter.self, SARIFReporter.self, JUnitReporter.self, GitHubReporter.self]
    }

    public static func reporter(_ id: String) -> AuditReporter.Type? { all.first { $0.identifier == id } }
}

public enum AuditTextReporter: AuditReporter {
    public static let identifier = "text"
    public static let summary = "A summary per trace and every finding, for people."

    public static func render(_ r: AuditResult) throws -> String {
        // Paths, devices and messages come from the traces: escaped for the terminal.
        let e = TerminalText.escape
        var out: [String] = []
        for t in r.traces {
            guard let doc = t.document else {
                out.append("\(e(t.path)): \(t.status == .failed ? "FAILED" : "UNREADABLE"): \(e(t.error ?? "unknown error"))")
                continue
            }
            let s = AnalysisDocument.Summary.of(t.findings)
            var line = "\(e(t.path)): \(e(doc.trace.kernelRelease ?? "kernel unknown")), \(doc.dmaEvents) events: \(s.errors) error(s), \(s.warnings) warning(s), \(s.notes) note(s)"
            if t.baselined > 0 { line += ", \(t.baselined) in baseline" }
            if !t.suppressed.isEmpty { line += ", \(t.suppressed.count) suppressed" }
            if !doc.lostGaps.isEmpty { line += ", \(doc.lostGaps.count) lost-event gap(s)" }
            out.append(line)
            for f in t.findings {
                out.append("  \(f.severity) [\(f.rule)] \(e(f.device)) at \(String(format: "%.6f", f.timestamp)) s: \(e(f.message))")
            }
        }
        if !r.staleBaseline.isEmpty {
            out.append("baseline entries that no longer occur:")
            for b in r.staleBaseline { out.append("  \(e(b.fingerprint)) [\(e(b.rule))] \(e(b.device)): \(e(b.message))") }
        }
        let all = AnalysisDocument.Summary.of(r.allFindings)
        let unreadable = r.unreadable.count - r.failed.count
        out.append("\(r.traces.count) trace(s), \(unreadable) unreadable, \(r.failed.count) failed: \(all.errors) error(s), \(all.warnings) warning(s), \(all.notes) note(s)")
        return out.joined(separator: "\n") + "\n"
    }
}

public enum AuditJSONReporter: AuditReporter {
    public static let identifier = "json"
    public static let summary = "The analyze document of every trace plus a summary."

    struct Document: Encodable {
        struct Trace: Encodable {
            var path: String
            var status: AuditResult.Status
            var error: String?
            var analysis: AnalysisDocument?
            var baselined: Int
            var suppressed: [Suppressed]
        }
        struct Suppressed: Encodable {
            var fingerprint: String
            var rule: String
            var device: String
            var reason: String
        }
        struct Summary: Encodable {
            var traces: Int
            /// Every trace without a result; `failed` is the subset whose analysis broke down.
            var unreadable: [String]
            var failed: [String]
            var errors: Int
            var warnings: Int
            var notes: Int
            var staleBaseline: [Baseline.Entry]
        }
        var tool = "dma-trace"
        var traces: [Trace]
        var summary: Summary
    }

    public static func render(_ r: AuditResult) throws -> String {
        let traces = r.traces.map { t -> Document.Trace in
            var analysis = t.document
            analysis?.findings = t.findings
            analysis?.summary = AnalysisDocument.Summary.of(t.findings)
            return Document.Trace(path: t.path, status: t.status, error: t.error, analysis: analysis, baselined: t.baselined,
                                  suppressed: t.suppressed.map { Document.Suppressed(fingerprint: $0.0.fingerprint, rule: $0.0.rule, device: $0.0.device, reason: $0.1.reason) })
        }
        let all = AnalysisDocument.Summary.of(r.allFindings)
        let doc = Document(traces: traces, summary: .init(traces: r.traces.count, unreadable: r.unreadable.map(\.path), failed: r.failed.map(\.path),
                                                          errors: all.errors, warnings: all.warnings, notes: all.notes,
                                                          staleBaseline: r.staleBaseline))
        return String(decoding: try JSONEncoder.stable(pretty: true).encode(doc), as: UTF8.self) + "\n"
    }
}

public enum GitHubReporter: AuditReporter {
    public static let identifier = "github"
    public static let summary = "GitHub Actions workflow commands, so findings show as annotations."

    static func data(_ s: String) -> String { WorkflowCommandText.data(s) }
    static func property(_ s: String) -> String { WorkflowCommandText.property(s) }

    public static func render(_ r: AuditResult) throws -> String {
        var out: [String] = []
        for t in r.traces {
            if t.document == nil {
                let title = t.status == .failed ? "dma-trace: analysis failed" : "dma-trace: unreadable trace"
                out.append("::error file=\(property(t.path)),title=\(property(title))::\(data(t.error ?? "unreadable"))")
            }
            for f in t.findings {
                let command = f.severity == .note ? "notice" : f.severity.description
                let title = "dma-trace \(f.rule) (\(f.device))"
                // On the source line when debug info placed it in the checkout, else on the trace.
                if let l = f.location, let source = SARIFReporter.sourcePath(l.file, root: r.sourceRoot) {
                    out.append("::\(command) file=\(property(source)),line=\(l.line),title=\(property(title))::\(data(f.message))")
                } else {
                    out.append("::\(command) file=\(property(t.path)),title=\(property(title))::\(data(f.message))")
                }
            }
        }
        return out.isEmpty ? "" : out.joined(separator: "\n") + "\n"
    }
}
