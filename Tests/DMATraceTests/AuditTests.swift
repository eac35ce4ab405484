import Foundation
import Testing
@testable import DMATrace

/// `dma-trace audit` end to end, on the real recordings plus hand-made bugs and unreadable files.
@Suite struct AuditTests {
    /// A folder with the real traces, one buggy text trace and one unreadable file.
    func corpus(_ name: String = #function) throws -> URL {
        let dir = try Fixtures.scratch(name)
        let sub = dir.appendingPathComponent("nested/deeper")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        for t in Fixtures.realTraces.prefix(2) {
            try FileManager.default.copyItem(atPath: Fixtures.sample(t), toPath: dir.appendingPathComponent(t).path)
        }
        let bug = try #require(RuleRegistry.description(of: "unmap-size-mismatch")).examples[0].ftraceText
        try bug.write(to: sub.appendingPathComponent("bug.txt"), atomically: true, encoding: .utf8)
        try Data([0x17, 0x08, 0x44, 0x74, 0x72, 0x61, 0x63, 0x69, 0x6e, 0x67, 0, 0, 1]).write(to: dir.appendingPathComponent("broken.dat"))
        try "ignored".write(to: dir.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        return dir
    }

    @Test func exitCodesAndUnreadableFilesStillReportTheRest() throws {
        let dir = try corpus()
        let r = try Fixtures.run(["audit", "--quiet", dir.path])
        #expect(r.status == 2, "an unreadable input makes the audit exit 2")
        #expect(r.stdout.contains("broken.dat: UNREADABLE"))
        #expect(r.stdout.contains("bug.txt") && r.stdout.contains("unmap-size-mismatch"))
        #expect(r.stdout.contains("k6.12-iommu.dat"))
        #expect(!r.stdout.contains("README.md"))
        #expect(r.stderr.contains("broken.dat"))

        let clean = try Fixtures.run(["audit", "--quiet", dir.appendingPathComponent("k6.12-iommu.dat").path])
        #expect(clean.status == 0)
        let buggy = try Fixtures.run(["audit", "--quiet", dir.appendingPathComponent("nested").path])
        #expect(buggy.status == 1)
        #expect(try Fixtures.run(["audit", "--quiet", "--fail-on", "none", dir.appendingPathComponent("nested").path]).status == 0)
        #expect(try Fixtures.run(["audit", "--quiet", dir.path + "/*.dat"]).status == 2)
        #expect(try Fixtures.run(["audit", "--quiet", "--format", "yaml", dir.path]).status == 2)
    }

    @Test func sarifIsValidForTheOfficialSchemaAndSarifTools() throws {
        let dir = try corpus()
        let out = dir.appendingPathComponent("out.sarif")
        let r = try Fixtures.run(["audit", "--quiet", "--format", "sarif", "--output", out.path, dir.path])
        #expect(r.status == 2)
        let python = try #require(Fixtures.which("python3"))
        let check = try Fixtures.run([Fixtures.root.appendingPathComponent("Scripts/validate-sarif.py").path, out.path], executable: python)
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out)) as? [String: Any])
        let run = try #require((doc["runs"] as? [[String: Any]])?.first)
        let rules = try #require(((run["tool"] as? [String: Any])?["driver"] as? [String: Any])?["rules"] as? [[String: Any]])
        #expect(rules.count == RuleRegistry.descriptions.count)
        let results = try #require(run["results"] as? [[String: Any]])
        let bug = try #require(results.first { $0["ruleId"] as? String == "unmap-size-mismatch" })
        #expect(bug["level"] as? String == "error")
        #expect((bug["partialFingerprints"] as? [String: String])?["dmaTraceFingerprint/v1"]?.count == 16)
    }

    @Test func sarifValidatorRejectsABrokenLog() throws {
        let dir = try Fixtures.scratch()
        let bad = dir.appendingPathComponent("bad.sarif")
        try #"{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"level": "loud", "message": {"text": "m"}}]}]}"#
            .write(to: bad, atomically: true, encoding: .utf8)
        let python = try #require(Fixtures.which("python3"))
        let check = try Fixtures.run([Fixtures.root.appendingPathComponent("Scripts/validate-sarif.py").path, bad.path], executable: python)
        #expect(check.status != 0)
    }

    @Test func junitHasASuitePerTraceAndACasePerRule() throws {
        let dir = try corpus()
        let out = dir.appendingPathComponent("out.xml")
        _ = try Fixtures.run(["audit", "--quiet", "--format", "junit", "-o", out.path, dir.path])
        let python = try #require(Fixtures.which("python3"))
        let read = try Fixtures.run([Fixtures.root.appendingPathComponent("Scripts/validate-junit.py").path, out.path], executable: python)
        #expect(read.status == 0, "\(read.stderr)")
        let rows = read.stdout.split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
        #expect(rows.count == 4)
        let rules = RuleRegistry.descriptions.count
        let bug = try #require(rows.first { $0[0].hasSuffix("bug.txt") })
        #expect(bug[1] == "\(rules)" && bug[2] == "1" && bug[3] == "0")
        let broken = try #require(rows.first { $0[0].hasSuffix("broken.dat") })
        #expect(broken[3] == "1")
        let clean = try #require(rows.first { $0[0].hasSuffix("k6.12-iommu.dat") })
        #expect(clean[2] == "0")
    }

    @Test func githubAnnotations() throws {
        let dir = try corpus()
        let r = try Fixtures.run(["audit", "--quiet", "--format", "github", dir.appendingPathComponent("nested").path])
        #expect(r.stdout.contains("::error file="))
        #expect(r.stdout.contains("title=dma-trace unmap-size-mismatch (0000%3A00%3A05.0)::"))
    }

    @Test func baselineRoundTrip() throws {
        let dir = try corpus()
        let nested = dir.appendingPathComponent("nested").path
        let base = dir.appendingPathComponent("baseline.json").path
        #expect(try Fixtures.run(["audit", "--quiet", "--write-baseline", base, nested]).status == 1)
        let again = try Fixtures.run(["audit", "--quiet", "--baseline", base, nested])
        #expect(again.status == 0, "known findings no longer fail the gate: \(again.stdout)")
        #expect(again.stdout.contains("in baseline"))
        // The bug is fixed: its baseline entry is listed as gone.
        let fixed = try Fixtures.run(["audit", "--quiet", "--baseline", base, dir.appendingPathComponent("k6.12-iommu.dat").path])
        #expect(fixed.status == 0)
        #expect(fixed.stdout.contains("no longer occur") && fixed.stdout.contains("unmap-size-mismatch"))
    }

    @Test func fingerprintsSurviveAReRecording() throws {
        // The same bug at other addresses and times, as on another boot.
        let rule = try #require(RuleRegistry.description(of: "unmap-size-mismatch"))
        let first = try Fixtures.analyze(text: rule.examples[0].ftraceText).findings.filter { $0.rule == rule.id }
        let moved = rule.examples[0].ftraceText
            .replacingOccurrences(of: "_addr=100000", with: "_addr=7a3000")
            .replacingOccurrences(of: "] 1.000000", with: "] 5.000000").replacingOccurrences(of: "] 1.100000", with: "] 5.100000")
        let second = try Fixtures.analyze(text: moved).findings.filter { $0.rule == rule.id }
        #expect(!first.isEmpty && first.map(\.fingerprint) == second.map(\.fingerprint))
    }

    @Test func configurationAppliesAndRejectsMistakesWithLineNumbers() throws {
        let dir = try corpus()
        let nested = dir.appendingPathComponent("nested").path
        let good = dir.appendingPathComponent("good.yml")
        try """
        severity:
          unmap-size-mismatch: warning
        suppressions:
          - rule: unmap-size-mismatch
            device: "0000:00:99.0"
            reason: another device entirely
        """.write(to: good, atomically: true, encoding: .utf8)
        let r = try Fixtures.run(["audit", "--quiet", "--config", good.path, nested])
        #expect(r.status == 0 && r.stdout.contains("warning [unmap-size-mismatch]"))

        let suppress = dir.appendingPathComponent("suppress.yml")
        try """
        suppressions:
          - rule: unmap-size-mismatch
            device: "0000:00:05.0"
            reason: known, fixed upstream
        """.write(to: suppress, atomically: true, encoding: .utf8)
        let s = try Fixtures.run(["audit", "--quiet", "--config", suppress.path, nested])
        #expect(s.status == 0 && s.stdout.contains("1 suppressed"))

        let cases: [(String, String)] = [
            ("disabled_rules: [no-such-rule]\n", ":1: unknown rule 'no-such-rule'"),
            ("severity:\n  double-mapping: loud\n", ":2: severity of double-mapping"),
            ("suppressions:\n  - rule: double-mapping\n    device: x\n", ":2: a suppression needs a reason"),
            ("colour: blue\n", ":1: unknown key 'colour'"),
            ("severity: [\n", "is not valid YAML"),
        ]
        for (i, (yaml, expected)) in cases.enumerated() {
            let f = dir.appendingPathComponent("bad\(i).yml")
            try yaml.write(to: f, atomically: true, encoding: .utf8)
            let bad = try Fixtures.run(["audit", "--quiet", "--config", f.path, nested])
            #expect(bad.status == 2)
            #expect(bad.stderr.contains(expected), "\(yaml) -> \(bad.stderr)")
        }
    }

    @Test func resultsComeInInputOrderWhateverTheScheduling() throws {
        let dir = try corpus()
        let a = try Fixtures.run(["audit", "--quiet", "--format", "json", "--jobs", "1", dir.path])
        let b = try Fixtures.run(["audit", "--quiet", "--format", "json", "--jobs", "4", dir.path])
        #expect(a.stdout == b.stdout)
        #expect(!a.stdout.isEmpty)
    }
}
