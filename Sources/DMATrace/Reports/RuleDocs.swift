import Foundation

/// Rule reference pages: the part generated from each rule's own description
/// (kept in sync by a test) and the hand-written prose around it.
public enum RuleDocs {
    public static let beginMarker = "<!-- BEGIN GENERATED: dma-trace rules --write-docs; do not edit by hand -->"
    public static let endMarker = "<!-- END GENERATED -->"

    /// The generated block for one rule: identity, summary, and its examples with what the tool says about them.
    public static func generated(_ rule: RuleDescription) -> String {
        var out = [beginMarker, "# \(rule.id)", "",
                   "**\(rule.name)**. Default severity: `\(rule.severity)`.", "", rule.summary, ""]
        for (i, example) in rule.examples.enumerated() {
            out.append("### Example \(i + 1): \(example.triggers ? "reported" + (example.severity.map { " as \($0)" } ?? "") : "not reported")")
            out.append("")
            out.append("```")
            out.append(contentsOf: example.ftraceText.split(separator: "\n").map(String.init))
            out.append("```")
            if example.triggers, let result = try? Analyzer.analyze(source: TextTraceReader(name: "example", text: example.ftraceText)),
               let f = result.findings.first(where: { $0.rule == rule.id }) {
                out.append("")
                out.append("> \(f.severity): \(f.message)")
            }
            out.append("")
        }
        out.append(endMarker)
        return out.joined(separator: "\n")
    }

    /// Replaces the generated block of an existing page, or makes a page with empty prose sections.
    public static func page(_ rule: RuleDescription, existing: String?) -> String {
        let block = generated(rule)
        guard let existing, let begin = existing.range(of: beginMarker), let end = existing.range(of: endMarker),
              begin.lowerBound < end.upperBound else {
            return block + "\n\n## What it means\n\n## Why it matters\n\n## How to fix the driver\n\n## What it cannot see\n"
        }
        return String(existing[..<begin.lowerBound]) + block + String(existing[end.upperBound...])
    }

    /// Where the rule pages are: `DMA_TRACE_DOCS_URL` (a base URL ending in /), or
    /// the Docs/rules folder of the source tree the binary was built in.
    public static var docsBase: URL? {
        if let env = ProcessInfo.processInfo.environment["DMA_TRACE_DOCS_URL"], let url = URL(string: env) { return url }
        var dir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("Docs/rules", isDirectory: true)
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    public static func pageURL(_ rule: RuleDescription) -> URL? {
        docsBase?.appendingPathComponent("\(rule.id).md")
    }

    /// The page's text when the docs are on this machine.
    public static func installedPage(_ rule: RuleDescription) -> String? {
        guard let url = pageURL(rule), url.isFileURL else { return nil }
        return try? String(contentsOf: url, encoding: .utf8)
    }

    /// Whether a page's generated block matches the rule as it is now.
    public static func isCurrent(_ rule: RuleDescription, page: String) -> Bool {
        page.contains(generated(rule))
    }
}
