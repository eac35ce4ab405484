import ArgumentParser
import DMATrace
import Foundation

struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Print the normalized DMA event stream, one line per event."
    )

    @OptionGroup var input: InputOptions
    @Flag(help: "Write NDJSON, one event object per line.") var json = false
    @Flag(help: "Decode everything but print only the number of events (for benchmarks).") var count = false
    @Option(name: .customLong("device"), help: "Only events of this device (repeatable).") var devices: [String] = []
    @Option(name: .customLong("kind"), help: "Only these event kinds or families, e.g. map_sg, sync, alloc (repeatable).")
    var kinds: [String] = []
    @Argument(help: "A trace.dat or ftrace text file.") var file: String

    func validate() throws {
        for k in kinds where !DMAEventKind.allNames.contains(where: { $0 == k || $0.hasPrefix(k + "_") }) {
            throw ValidationError("unknown event kind '\(k)'; known: \(DMAEventKind.allNames.joined(separator: ", "))")
        }
    }

    func run() throws {
        let source = try input.open(file)
        let deviceSet = Set(devices)
        let encoder = JSONEncoder.stable()
        var buffer = ""
        var n = 0
        // Property-wrapper reads cost a generic metadata lookup each: not once per event.
        let kinds = self.kinds, countOnly = count, json = self.json
        func matches(_ e: DMAEvent) -> Bool {
            if !deviceSet.isEmpty, !(e.device.map(deviceSet.contains) ?? false) { return false }
            if !kinds.isEmpty {
                let name = e.kind.name
                return kinds.contains { name == $0 || name.hasPrefix($0 + "_") }
            }
            return true
        }
        let stats = try source.read { event in
            guard matches(event) else { return }
            n += 1
            if countOnly { return }
            if json {
                buffer += String(decoding: try encoder.encode(EventJSON(event)), as: UTF8.self) + "\n"
            } else {
                buffer += TerminalText.escape(event.line) + "\n"
                if let stack = event.stack {
                    for frame in stack.frames { buffer += "    => \(TerminalText.escape(frame))\n" }
                }
            }
            if buffer.utf8.count > 1 << 16 {
                try StandardOutput.write(buffer)
                buffer = ""
            }
        }
        try StandardOutput.write(buffer)
        if count { try StandardOutput.write("\(n) events\n") }
        input.reportUnreadable(stats, path: file)
    }
}
