import ArgumentParser
import DMATrace
import Foundation

@main
struct DMATraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dma-trace",
        abstract: "Find DMA-API bugs in Linux kernel traces (trace.dat or ftrace text).",
        subcommands: [AnalyzeCommand.self, AuditCommand.self, ReportCommand.self, InfoCommand.self, EventsCommand.self, RulesCommand.self]
    )

    /// Bad input and bad usage both exit 2 (ArgumentParser would say 64 for usage).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as IngestError {
            FileHandle.standardError.write(Data("dma-trace: \(error)\n".utf8))
            Foundation.exit(2)
        } catch let error as UsageProblem {
            FileHandle.standardError.write(Data("dma-trace: \(error.message)\n".utf8))
            Foundation.exit(2)
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is ExitCode {
                exit(withError: error)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(2)
        }
    }
}

struct UsageProblem: Error {
    var message: String
}

struct InputOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Show unreadable text lines with their line numbers.")
    var verbose = false

    func open(_ path: String) throws -> DMAEventSource {
        try TraceOpener.open(path: path, options: .init(keepUnreadable: verbose ? 200 : 0))
    }

    func reportUnreadable(_ stats: IngestStats, path: String) {
        guard verbose, stats.unreadableLines > 0 else { return }
        var text = "\(path): \(stats.unreadableLines) unreadable lines\n"
        for s in stats.unreadableSamples { text += "  line \(s.line): \(s.reason): \(s.text)\n" }
        FileHandle.standardError.write(Data(text.utf8))
    }
}

func writeStdout(_ s: String) {
    FileHandle.standardOutput.write(Data(s.utf8))
}
