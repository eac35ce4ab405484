import Foundation
import Testing
@testable import DMATrace

/// The trace.dat path and the text path (trace-cmd report of the same file)
/// must give the same normalized events, apart from what text cannot carry:
/// nanoseconds (text rounds to microseconds) and stack frame offsets.
@Suite struct DifferentialTests {
    @Test(arguments: Fixtures.realTraces + ["k6.12-stacks.dat", "k6.12-lossy.dat"])
    func textAndBinaryAgree(_ name: String) throws {
        let traceCmd = try #require(Fixtures.which("trace-cmd"), "trace-cmd is needed (apt-get install trace-cmd)")
        let dir = try Fixtures.scratch(name)
        let report = dir.appendingPathComponent(name + ".txt")
        let run = try Fixtures.run(["report", Fixtures.sample(name)], executable: traceCmd)
        #expect(run.status == 0)
        try run.stdout.write(to: report, atomically: true, encoding: .utf8)

        let binary = try Fixtures.events(path: Fixtures.sample(name))
        let text = try Fixtures.events(path: report.path)
        #expect(binary.count == text.count)
        var mismatches: [String] = []
        for (b, t) in zip(binary, text) {
            var rounded = b
            rounded.timestamp = (b.timestamp + 500) / 1000 * 1000
            // trace-cmd report prints "=> function (address)": the offset is not in the text.
            rounded.stack = b.stack.map { KernelStack(frames: $0.frames.map { String($0.split(separator: "+")[0]) }) }
            if rounded != t { mismatches.append("binary \(b.line)\ntext   \(t.line)") }
            if mismatches.count > 5 { break }
        }
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
    }
}
