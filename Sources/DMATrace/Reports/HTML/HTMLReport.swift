import Foundation
import Mustache

/// Renders the self-contained HTML report with a Mustache template: the page
/// model supplies values, the template lays them out and escapes every one.
public enum HTMLReport {
    static let template: MustacheTemplate = {
        do {
            return try MustacheTemplate(string: ReportAssets.template)
        } catch {
            preconditionFailure("the built-in report template does not parse: \(error)")
        }
    }()

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

    static let indexTemplate: MustacheTemplate = {
        do {
            return try MustacheTemplate(string: ReportAssets.indexTemplate)
        } catch {
            preconditionFailure("the built-in index template does not parse: \(error)")
        }
    }()
}

extension RuleDocs {
    /// A page's hand-written prose (below the generated block), as plain text.
    static func prose(_ page: String) -> String {
        guard let end = page.range(of: endMarker) else { return page }
        return page[end.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
