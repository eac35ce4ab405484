import ArgumentParser
import DMATrace
import Foundation

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a self-contained HTML report of one trace, to attach to a bug or a review."
    )

    @OptionGroup var input: InputOptions
    @OptionGroup var debugInfo: DebugInfoArguments
    @Option(help: "Link each source line: a URL template with {file} and {line}, e.g. https://git.example.org/tree/{file}#n{line}.")
    var sourceURL: String?
    @Option(name: .shortAndLong, help: "The HTML file to write.") var output: String
    @Argument(help: "A trace.dat or ftrace text file.") var file: String

    func validate() throws {
        if let sourceURL, !SourceLinks.isValidTemplate(sourceURL) {
            throw ValidationError("--source-url must be an http(s) URL template containing {file} (and usually {line})")
        }
    }

    func run() throws {
        var options = AnalysisOptions()
        options.timeline = true
        options.debugInfo = debugInfo.options
        let result = try Analyzer.analyze(path: file, options: options,
                                          textOptions: .init(keepUnreadable: input.verbose ? 200 : 0))
        input.reportUnreadable(result.stats, path: file)
        warnDebugInfo(result.debugInfoWarnings)
        let html = HTMLReport.render(AnalysisDocument(result, findings: result.findings),
                                     sources: SourceLinks(root: debugInfo.root, urlTemplate: sourceURL))
        try AtomicFile.write(html, to: output)
    }
}
