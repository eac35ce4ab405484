import Foundation
import Testing
@testable import DMATrace

/// `audit` supervising workers that misbehave for real: a stand-in worker (a shell
/// script given with the hidden `--worker`) crashes, is SIGKILLed, hangs or prints
/// junk depending on the trace's name, and runs the real `dma-trace analyze` otherwise.
@Suite struct WorkerFaultTests {
    static func worker(in dir: URL) throws -> String {
        let script = dir.appendingPathComponent("worker.sh")
        try """
        #!/bin/sh
        # Stand-in for `dma-trace analyze`: the trace path is the last argument.
        ulimit -c 0
        for trace; do :; done
        case "$trace" in
          *crash*) kill -SEGV $$ ;;
          *oom*) kill -KILL $$ ;;
          *hang*) exec sleep 600 ;;
          *junk*) echo 'Segmentation fault, or so I say'; exit 0 ;;
          *truncated*) printf '{"devices": [], "findings": [{"rule": "double-'; exit 0 ;;
          *odd-exit*) echo "dma-trace: something odd" >&2; exit 3 ;;
          *pid*) echo $$ > "$trace.pid"; sleep 600 & echo $! >> "$trace.pid"; exec sleep 600 ;;
          *) exec '\(Fixtures.binary.path)' "$@" ;;
        esac
        """.write(to: script, atomically: true, encoding: .utf8)
        chmod(script.path, 0o755)
        return script.path
    }

    static let bugText = RuleRegistry.description(of: "unmap-size-mismatch")!.examples[0].ftraceText

    @Test func everyMisbehaviourFailsItsTraceAndTheRestIsReported() throws {
        let dir = try Fixtures.scratch()
        let traces = dir.appendingPathComponent("traces")
        try FileManager.default.createDirectory(at: traces, withIntermediateDirectories: true)
        for name in ["a-good", "crash", "oom", "hang", "junk", "truncated", "odd-exit"] {
            try Self.bugText.write(to: traces.appendingPathComponent(name + ".txt"), atomically: true, encoding: .utf8)
        }
        try Data([0x17, 0x08, 0x44, 0x74, 0x72, 0x61, 0x63, 0x69, 0x6e, 0x67, 0, 1]).write(to: traces.appendingPathComponent("broken.dat"))
        let out = { (name: String) in dir.appendingPathComponent(name).path }
        let r = try Fixtures.run(["audit", "--quiet", "--worker", try Self.worker(in: dir), "--timeout", "1", "--jobs", "4",
                                  "--format", "text", "-o", out("t.txt"), "--format", "json", "-o", out("j.json"),
                                  "--format", "sarif", "-o", out("s.sarif"), "--format", "junit", "-o", out("j.xml"),
                                  "--format", "github", "-o", out("g.txt"), "--html", out("html"), traces.path])
        #expect(r.status == 2, "\(r.stderr)")

        let reasons = [
            "crash": "the analysis worker crashed (signal 11, Segmentation fault)",
            "oom": "the analysis worker was killed (SIGKILL, as the out-of-memory killer does)",
            "hang": "the analysis did not finish within 1 s (--timeout); its worker was killed",
            "junk": "the analysis worker exited 0 but printed 32 bytes that are not a complete analysis",
            "truncated": "the analysis worker exited 0 but printed 46 bytes that are not a complete analysis",
            "odd-exit": "the analysis worker exited with status 3: something odd",
        ]
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out("j.json")))) as? [String: Any])
        let entries = try #require(json["traces"] as? [[String: Any]])
        func entry(_ name: String) -> [String: Any]? { entries.first { ($0["path"] as? String)?.contains("/\(name).") == true } }
        for (name, reason) in reasons {
            let e = try #require(entry(name), "\(name)")
            #expect(e["status"] as? String == "failed", "\(name)")
            #expect(e["error"] as? String == "\(traces.path)/\(name).txt: \(reason)", "\(name): \(e["error"] ?? "")")
        }
        #expect(entry("broken")?["status"] as? String == "unreadable")
        let good = try #require(entry("a-good"))
        #expect(good["status"] as? String == "analyzed")
        #expect(((good["analysis"] as? [String: Any])?["findings"] as? [Any])?.isEmpty == false, "the good trace is still analyzed and reported")
        #expect((json["summary"] as? [String: Any])?["failed"] as? [String] != nil)

        let text = try String(contentsOfFile: out("t.txt"), encoding: .utf8)
        let sarif = try String(contentsOfFile: out("s.sarif"), encoding: .utf8)
        let junit = try String(contentsOfFile: out("j.xml"), encoding: .utf8)
        let github = try String(contentsOfFile: out("g.txt"), encoding: .utf8)
        let index = try String(contentsOfFile: out("html/index.html"), encoding: .utf8)
        #expect(text.contains("a-good.txt: ") && text.contains("unmap-size-mismatch"))
        #expect(text.contains("8 trace(s), 1 unreadable, 6 failed"))
        for (name, reason) in reasons {
            #expect(text.contains("\(name).txt: FAILED: \(traces.path)/\(name).txt: \(reason)"), "text \(name)")
            #expect(sarif.contains("analysis failed: \(traces.path)/\(name).txt: \(reason)"), "sarif \(name)")
            #expect(junit.contains(reason.replacingOccurrences(of: "'", with: "&apos;")), "junit \(name)")
            #expect(github.contains("title=dma-trace%3A analysis failed::\(traces.path)/\(name).txt: \(reason.replacingOccurrences(of: "%", with: "%25"))"), "github \(name)")
            #expect(index.contains(reason.replacingOccurrences(of: "'", with: "&#39;")), "html \(name)")
        }
        let python = try #require(Fixtures.which("python3"))
        let check = try Fixtures.run([Fixtures.root.appendingPathComponent("Scripts/validate-sarif.py").path, out("s.sarif")], executable: python)
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        let read = try Fixtures.run([Fixtures.root.appendingPathComponent("Scripts/validate-junit.py").path, out("j.xml")], executable: python)
        #expect(read.status == 0, "\(read.stderr)")
    }

    /// SIGINT or SIGTERM to the audit: every worker, and what the workers started, is gone.
    @Test(arguments: [SIGINT, SIGTERM])
    func aSignalToTheAuditLeavesNoWorkerBehind(_ sig: Int32) throws {
        let dir = try Fixtures.scratch("orphans\(sig)")
        let traces = (1...2).map { dir.appendingPathComponent("pid-\($0).txt") }
        for t in traces { try Self.bugText.write(to: t, atomically: true, encoding: .utf8) }
        let run = try Processes.start(["audit", "--quiet", "--jobs", "2", "--worker", try Self.worker(in: dir)] + traces.map(\.path), in: dir)
        func pids() -> [pid_t] {
            traces.flatMap { ((try? String(contentsOfFile: $0.path + ".pid", encoding: .utf8)) ?? "").split(separator: "\n").compactMap { pid_t($0) } }
        }
        try Processes.waitFor("both workers and their children to start") { pids().count == 4 && pids().allSatisfy(Processes.isAlive) }
        let started = pids()
        kill(run.pid, sig)
        run.process.waitUntilExit()
        #expect(run.process.terminationReason == .uncaughtSignal && run.process.terminationStatus == sig)
        // The audit kills its workers' process groups and waits for the workers, not for their
        // children: a SIGKILLed grandchild can still be on its way out for a moment under load
        // (seen once). One that was not killed is still there seconds later.
        try? Processes.waitFor("the workers' children to end", seconds: 5) { !started.contains(where: Processes.isAlive) }
        let survivors = started.filter(Processes.isAlive)
        #expect(survivors.isEmpty, "still running: \(survivors)")
        survivors.forEach { kill($0, SIGKILL) }
    }

    /// SIGKILL to the audit (it cannot clean up after that): its real worker, blocked reading
    /// an endless input, notices its audit is gone and ends itself.
    @Test func aWorkerDoesNotOutliveAKilledAudit() throws {
        let dir = try Fixtures.scratch()
        let input = try OutputFaultTests.EndlessInput(in: dir, name: "endless.txt", first: Data(OutputFaultTests.realText.utf8.prefix(20000)))
        let run = try Processes.start(["audit", "--quiet", input.path], in: dir)
        var worker: pid_t = 0
        try Processes.waitFor("the worker to read its input") {
            worker = Processes.children(of: run.pid).first { Processes.hasOpen($0, input.path) } ?? 0
            return worker != 0
        }
        kill(run.pid, SIGKILL)
        run.process.waitUntilExit()
        try Processes.waitFor("worker \(worker) to end", seconds: 20) { !Processes.isAlive(worker) }
    }
}
