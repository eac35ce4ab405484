import ArgumentParser
import DMATrace
import Foundation

struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record the dma, swiotlb and iommu events into a trace.dat (version 6), through our own tracefs instance.",
        discussion: """
        The file is read by trace-cmd report, KernelShark and dma-trace analyze. The traced command finds the \
        instance's trace_marker in DMA_TRACE_MARKER. Exit status: 0 done, 1 --analyze found something at or \
        above --fail-on or the command failed, 2 bad use or a fault (nothing is left enabled).
        """
    )

    @Option(name: .shortAndLong, help: "The trace.dat to write.") var output: String
    @Flag(help: "Also analyze the recording and print the findings, as watch does.") var analyze = false
    @OptionGroup var live: LiveOptions
    @OptionGroup var filters: FindingFilters

    func run() throws {
        var options = live.captureOptions()
        options.fullPagesOnly = true
        let capture = LiveCapture(options: options)
        do {
            try capture.prepare()
        } catch let error as LiveError {
            throw UsageProblem(message: error.message)
        }
        let writer: TraceDatV6Writer
        do {
            // The page size until the capture knows its instance's sub-buffer size (WriterSink.begin).
            writer = try TraceDatV6Writer(path: output, pageSize: Int(getpagesize()))
        } catch let error as LiveError {
            throw UsageProblem(message: error.message)
        }
        let sink = WriterSink(writer)
        let outcome: LiveCapture.Outcome
        do {
            outcome = try capture.run(sink: sink)
        } catch let error as LiveError {
            writer.discard()
            throw UsageProblem(message: error.message)
        }
        let cpus = (outcome.metadata.cpuStats.count)
        let truncation: TraceDatTruncation?
        do {
            truncation = try writer.finish(metadata: outcome.metadata, cpus: cpus)
        } catch let error as LiveError {
            let spooled = writer.failure.map { " (\($0))" } ?? ""
            throw UsageProblem(message: "disk full while recording\(spooled): \(error.message)")
        }
        var faults: [String] = []
        if let spoolProblem = writer.failure {
            faults.append("disk full while recording \(output): \(spoolProblem); the capture stopped there")
        }
        if let truncation {
            faults.append("\(output) is incomplete: \(truncation); the file is a valid trace.dat with what it holds")
        }
        if let problem = outcome.instanceProblem { faults.append(problem) }
        let total = outcome.pages.values.reduce(0, +)
        stderrLine("wrote \(output): \(cpus) CPUs, \(total) pages" + (outcome.lostByCPU.isEmpty ? "" : ", the ring buffer lost events on CPU " + outcome.lostByCPU.keys.sorted().map(String.init).joined(separator: ", ")))
        var failed = false
        // A truncated file is still a valid one: analyze what it holds.
        if analyze && (faults.isEmpty || truncation != nil) {
            let result = try Analyzer.analyze(path: output)
            let findings = filters.apply(result.findings)
            try StandardOutput.write(TextReport(color: false, showHistory: 12).render(result, findings: findings))
            failed = filters.fails(findings)
        }
        if let problem = commandProblem(outcome.stop, live.command) {
            stderrLine(problem)
            failed = true
        }
        if !faults.isEmpty { throw UsageProblem(message: faults.joined(separator: "; ")) }
        if case .signal(let sig) = outcome.stop {
            stderrLine("stopped by signal \(sig)" + (live.command.isEmpty ? "" : " before the traced command ended (it got SIGTERM)"))
            // Ctrl-C is how a run without a command ends; with one, the run did not finish.
            if !live.command.isEmpty { throw ExitCode(128 + sig) }
        }
        if failed { throw ExitCode(1) }
    }
}

private final class WriterSink: LivePageSink {
    let writer: TraceDatV6Writer
    init(_ writer: TraceDatV6Writer) { self.writer = writer }
    func begin(subBufferSize: Int) throws { try writer.setPageSize(subBufferSize) }
    func take(page: [UInt8], cpu: Int) -> Bool { writer.append(page: page, cpu: cpu) }
}
