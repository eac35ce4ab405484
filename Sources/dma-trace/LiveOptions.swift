import ArgumentParser
import DMATrace
import Foundation

/// What `watch` and `record` share: where tracefs is, what to enable, when to stop.
struct LiveOptions: ParsableArguments {
    @Option(help: "The tracefs mount point (default: the mounted one, /sys/kernel/tracing).")
    var tracefs: String?
    @Option(help: "Per-CPU ring-buffer size of our instance, in KiB (default: the kernel's).")
    var bufferKb: Int?
    @Flag(help: "Record a kernel stack with every event (the instance's stacktrace option, as trace-cmd record -T).")
    var stack = false
    @Flag(help: "Watch what exists on a kernel without the dma events (before Linux 6.12: swiotlb and iommu only).")
    var allowPartial = false
    @Flag(help: "Remove dma-trace-<pid> instances left behind by killed runs.")
    var cleanStale = false
    @Option(help: "Trace clock of our instance (default: the top-level buffer's, which the kernel sets to global when sched_clock is unstable).")
    var clock: String?
    @Option(help: "Seconds to trace when no command is given (default: until Ctrl-C).")
    var duration: Double?
    @Argument(parsing: .postTerminator, help: "The command to trace (after --): tracing is on before it starts and stops when it exits.")
    var command: [String] = []

    func validate() throws {
        if let kb = bufferKb, kb <= 0 { throw ValidationError("--buffer-kb takes a positive number of KiB") }
        if let d = duration, !(d > 0) { throw ValidationError("--duration takes a positive number of seconds") }
        if duration != nil && !command.isEmpty { throw ValidationError("--duration is for runs without a command; with -- CMD the capture ends when CMD exits") }
    }

    func captureOptions() -> LiveCapture.Options {
        var o = LiveCapture.Options()
        o.tracefs = tracefs
        o.instance.bufferKB = bufferKb
        o.instance.stacks = stack
        o.instance.clock = clock
        o.allowPartial = allowPartial
        o.cleanStale = cleanStale
        o.duration = duration
        o.command = command
        return o
    }
}

/// How the traced command ended, for stderr; nil when it succeeded or there was none.
func commandProblem(_ stop: LiveCapture.StopReason, _ command: [String]) -> String? {
    switch stop {
    case .commandExited(let status) where status != 0:
        return "the traced command (\(command.joined(separator: " "))) failed with exit status \(status)"
    case .commandKilled(let signal):
        return "the traced command (\(command.joined(separator: " "))) was killed by signal \(signal)"
    default:
        return nil
    }
}

func stderrLine(_ s: String) { FileHandle.standardError.write(Data(("dma-trace: " + s + "\n").utf8)) }
