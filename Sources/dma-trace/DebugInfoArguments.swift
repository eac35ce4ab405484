import ArgumentParser
import DMATrace
import Foundation

/// `--debuginfo`, `--module-base` and `--source-root`, shared by analyze, audit and report.
struct DebugInfoArguments: ParsableArguments {
    @Option(name: .customLong("debuginfo"),
            help: "A vmlinux, .ko, .ko.debug or a folder of them (a kernel build tree, /usr/lib/debug/lib/modules/KVER): findings' stacks resolve to source lines (repeatable).")
    var paths: [String] = []
    @Option(name: .customLong("module-base"),
            help: "NAME=ADDR: where module NAME's .text was loaded (/sys/module/NAME/sections/.text), for its frames the trace has no symbols for (repeatable).")
    var moduleBases: [String] = []
    @Option(help: "The checkout of the driver's source: source paths are given relative to it.")
    var sourceRoot: String?

    func validate() throws {
        for b in moduleBases where DebugInfoOptions.parseModuleBase(b) == nil {
            throw ValidationError("--module-base takes NAME=ADDR with ADDR in hex, not '\(b)'")
        }
        if !moduleBases.isEmpty && paths.isEmpty { throw ValidationError("--module-base needs the module's file: give --debuginfo") }
        if let sourceRoot {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: sourceRoot, isDirectory: &isDir), isDir.boolValue else {
                throw ValidationError("--source-root \(sourceRoot): no such folder")
            }
        }
    }

    var options: DebugInfoOptions {
        var bases: [String: UInt64] = [:]
        for b in moduleBases { if let (name, addr) = DebugInfoOptions.parseModuleBase(b) { bases[name] = addr } }
        return DebugInfoOptions(paths: paths, moduleBases: bases)
    }

    var root: SourceRoot? { sourceRoot.map(SourceRoot.init) }

    /// The worker's arguments for the same debug info (audit runs one analyze per trace).
    var workerArguments: [String] {
        paths.flatMap { ["--debuginfo", $0] } + moduleBases.flatMap { ["--module-base", $0] }
    }
}

func warnDebugInfo(_ warnings: [String]) {
    for w in warnings { Diagnostics.error("warning: " + w) }
}
