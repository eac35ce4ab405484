import ArgumentParser
import DMATrace
import Foundation

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show a trace's kernel, CPUs, time span, event generation, counts and lost events."
    )

    @OptionGroup var input: InputOptions
    @Flag(help: "Write JSON instead of text.") var json = false
    @Argument(help: "trace.dat or ftrace text files.") var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one trace file") }
    }

    func run() throws {
        for (i, path) in files.enumerated() {
            let inventory = try TraceInventory.take(from: input.open(path))
            input.reportUnreadable(inventory.stats, path: path)
            if json {
                let data = try JSONEncoder.stable(pretty: true).encode(inventory)
                try StandardOutput.write(data + Data("\n".utf8))
            } else {
                try StandardOutput.write((i > 0 ? "\n" : "") + inventory.text + "\n")
            }
        }
    }
}
