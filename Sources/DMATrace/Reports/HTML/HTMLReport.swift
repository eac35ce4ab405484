import Foundation
import Mustache

/// Renders the self-contained HTML report with a Mustache template: the page
/// model supplies values, the template lays them out and escapes every one.
public enum HTMLReport {
    /// The templates' content type (`{{% CONTENT_TYPE: DMA_TRACE_HTML}}`): Mustache's own HTML
    /// escaping left control characters from the trace (a task named with ESC) raw in the page.
    static let contentTypeName = "DMA_TRACE_HTML"
    private struct TraceHTML: MustacheContentType {
        func escapeText(_ text: String) -> String { HTMLText.escape(text) }
    }
    private static let registered: Void = MustacheContentTypes.register(TraceHTML(), named: contentTypeName)

    static func parse(_ template: String, _ what: String) -> MustacheTemplate {
        _ = registered
        do {
            return try MustacheTemplate(string: "{{% CONTENT_TYPE: \(contentTypeName)}}" + template)
        } catch {
            preconditionFailure("the built-in \(what) template does not parse: \(error)")
        }
    }

    static let template = parse(ReportAssets.template, "report")

    public static func render(_ page: ReportPage) -> String {
        template.render(page)
    }

    public static func render(_ document: AnalysisDocument, sources: SourceLinks = .init()) -> String {
        render(ReportPage(document: document, sources: sources))
    }

    /// An index page linking one report per trace (audit --html).
    public static func renderIndex(_ entries: [IndexEntry]) -> String {
        indexTemplate.render(IndexPage(entries: entries, stylesheet: ReportAssets.stylesheet,
                                       generator: "dma-trace \(DMATraceVersion.current)"))
    }

    public struct IndexEntry {
        public var trace: String
        public var href: String?
        public var errors: Int, warnings: Int, notes: Int
        public var problem: String?
        public var kernel: String
        public init(trace: String, href: String?, errors: Int, warnings: Int, notes: Int, problem: String?, kernel: String) {
            self.trace = trace
            self.href = href
            self.errors = errors
            self.warnings = warnings
            self.notes = notes
            self.problem = problem
            self.kernel = kernel
        }
    }

    struct IndexPage {
        var entries: [IndexEntry]
        var stylesheet: String
        var generator: String
    }

    static let indexTemplate = parse(ReportAssets.indexTemplate, "index")
}

extension RuleDocs {
    /// A page's hand-written prose (below the generated block), as plain text.
    static func prose(_ page: String) -> String {
        guard let end = page.range(of: endMarker) else { return page }
        return page[end.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
