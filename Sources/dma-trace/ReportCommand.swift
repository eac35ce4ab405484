import ArgumentParser
import DMATrace
import Foundation

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a self-contained HTML report of one trace, to attach to a bug or a review."
    )

    @OptionGroup var input: InputOptions
    @Option(name: .shortAndLong, help: "The HTML file to write.") var output: String
    @Argument(help: "A trace.dat or ftrace text file.") var file: String

    func run() throws {
        var options = AnalysisOptions()
        options.timeline = true
        let result = try Analyzer.analyze(path: file, options: options,
                                          textOptions: .init(keepUnreadable: input.verbose ? 200 : 0))
        input.reportUnreadable(result.stats, path: file)
        let html = HTMLReport.render(AnalysisDocument(result, findings: result.findings))
        try AtomicFile.write(html, to: output)
    }
}
