import ArgumentParser
import DMATrace
import Foundation

@main
struct DMATraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dma-trace",
        abstract: "Find DMA-API bugs in Linux kernel traces (trace.dat or ftrace text).",
        subcommands: [AnalyzeCommand.self, WatchCommand.self, RecordCommand.self, AuditCommand.self, ReportCommand.self, InfoCommand.self, EventsCommand.self, RulesCommand.self]
    )

    /// Bad input, bad usage and a failed write all exit 2 (ArgumentParser would say 64 for
    /// usage); a closed pipe ends by SIGPIPE, SIGINT/SIGTERM by that signal (Termination).
    static func main() {
        Termination.install()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as IngestError {
            Diagnostics.error(error.description)
            Foundation.exit(2)
        } catch let error as DebugInfoError {
            Diagnostics.error(error.description)
            Foundation.exit(2)
        } catch let error as UsageProblem {
            Diagnostics.error(error.message)
            Foundation.exit(2)
        } catch let error as OutputError {
            fail(error)
        } catch let error as OutputFailures {
            if error.failures.contains(where: \.isClosedPipe) { Termination.endForClosedPipe() }
            error.failures.forEach { Diagnostics.error($0.description) }
            Foundation.exit(2)
        } catch let error as ExitCode {
            Foundation.exit(error.rawValue)
        } catch {
            let message = fullMessage(for: error)
            if exitCode(for: error) == .success {
                // --help and --version: what the user asked for goes to standard output, checked.
                do { try StandardOutput.write(message + "\n") } catch let e as OutputError { fail(e) } catch {}
                Foundation.exit(0)
            }
            Diagnostics.lines(message.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
            Foundation.exit(2)
        }
    }

    static func fail(_ error: OutputError) -> Never {
        if error.isClosedPipe { Termination.endForClosedPipe() }
        Diagnostics.error(error.description)
        Foundation.exit(2)
    }
}

struct UsageProblem: Error {
    var message: String
}

/// Several outputs failed; each gets its own message.
struct OutputFailures: Error {
    var failures: [OutputError]
}

struct InputOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Show unreadable text lines with their line numbers.")
    var verbose = false

    func open(_ path: String) throws -> DMAEventSource {
        try TraceOpener.open(path: path, options: .init(keepUnreadable: verbose ? 200 : 0))
    }

    func reportUnreadable(_ stats: IngestStats, path: String) {
        guard verbose, stats.unreadableLines > 0 else { return }
        Diagnostics.lines(["\(path): \(stats.unreadableLines) unreadable lines"]
            + stats.unreadableSamples.map { "  line \($0.line): \($0.reason): \($0.text)" })
    }
}

/// The choices of an option, by the names the help shows; ArgumentParser lists them in its error.
protocol NamedChoice: CaseIterable, RawRepresentable, ExpressibleByArgument where RawValue == String {}

enum FailOn: String, NamedChoice {
    case error, warning, note, none

    var threshold: Severity? { Severity(name: rawValue) }
}

enum SeverityName: String, NamedChoice {
    case note, warning, error

    var severity: Severity { Severity(name: rawValue)! }
}

enum ColorChoice: String, NamedChoice {
    case auto, always, never
}
