import ArgumentParser
import DMATrace
import Foundation

struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "List the rules, or regenerate their reference pages."
    )

    @Option(help: "Rewrite the generated part of every page in this folder (Docs/rules).")
    var writeDocs: String?

    func run() throws {
        if let dir = writeDocs {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                throw UsageProblem(message: "\(dir): cannot create the folder (\(error.localizedDescription))")
            }
            for rule in RuleRegistry.descriptions {
                let path = (dir as NSString).appendingPathComponent("\(rule.id).md")
                let existing = try? String(contentsOfFile: path, encoding: .utf8)
                try AtomicFile.write(RuleDocs.page(rule, existing: existing), to: path)
            }
            try StandardOutput.write("wrote \(RuleRegistry.descriptions.count) pages in \(dir)\n")
            return
        }
        for rule in RuleRegistry.descriptions {
            try StandardOutput.write("\(rule.id.padding(toLength: 30, withPad: " ", startingAt: 0)) \(rule.severity.description.padding(toLength: 8, withPad: " ", startingAt: 0)) \(rule.summary)\n")
        }
    }
}
