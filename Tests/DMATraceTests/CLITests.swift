import Foundation
import Testing
@testable import DMATrace

/// The built binary, as users and CI run it.
@Suite struct CLITests {
    @Test func analyzeCleanRealTraceExitsZero() throws {
        let r = try Fixtures.run(["analyze", Fixtures.sample("k6.12-swiotlb.dat")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Devices") && r.stdout.contains("swiotlb bounce"))
    }

    @Test func analyzeJSONHasTheDocumentedShape() throws {
        let r = try Fixtures.run(["analyze", "--format", "json", Fixtures.sample("k7.3-nvme-e1000e-ahci-xhci.dat")])
        #expect(r.status == 0)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let findings = try #require(doc["findings"] as? [[String: Any]])
        #expect(!findings.isEmpty)
        for key in ["rule", "severity", "device", "timestamp", "cpu", "task", "pid", "message", "fingerprint", "events"] {
            #expect(findings[0][key] != nil, "missing \(key)")
        }
        #expect((doc["devices"] as? [Any])?.count == 4)
    }

    @Test func findingsAtTheThresholdExitOne() throws {
        let f = try Fixtures.scratch().appendingPathComponent("bug.txt")
        let rule = try #require(RuleRegistry.description(of: "unmap-size-mismatch"))
        try rule.examples[0].ftraceText.write(to: f, atomically: true, encoding: .utf8)
        #expect(try Fixtures.run(["analyze", f.path]).status == 1)
        #expect(try Fixtures.run(["analyze", "--fail-on", "none", f.path]).status == 0)
        let filtered = try Fixtures.run(["analyze", "--rule", "double-unmap", f.path])
        #expect(filtered.status == 0)
    }

    @Test func badInputAndBadUsageExitTwo() throws {
        let missing = try Fixtures.run(["analyze", "/nonexistent/trace.dat"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("/nonexistent/trace.dat: no such file"))
        #expect(try Fixtures.run(["analyze", "--min-severity", "loud", Fixtures.sample("k6.12-iommu.dat")]).status == 2)
        #expect(try Fixtures.run(["frobnicate"]).status == 2)
        #expect(try Fixtures.run(["events", "--kind", "nonsense", Fixtures.sample("k6.12-iommu.dat")]).status == 2)
    }

    /// `info --json` is the same bytes every run: lost events per CPU in CPU order.
    @Test func infoJSONIsStableAcrossRuns() throws {
        let runs = try (0..<4).map { _ in try Fixtures.run(["info", "--json", Fixtures.sample("k6.12-lossy.dat")]) }
        #expect(runs.allSatisfy { $0.status == 0 && $0.stdout == runs[0].stdout })
        let json = try #require(try JSONSerialization.jsonObject(with: Data(runs[0].stdout.utf8)) as? [String: Any])
        let lost = try #require(json["lostByCPU"] as? [[String: Any]])
        let cpus = lost.compactMap { $0["cpu"] as? Int }
        #expect(cpus.count > 1 && cpus == cpus.sorted() && lost.allSatisfy { ($0["lost"] as? Int ?? 0) > 0 })
    }

    @Test func infoAndEventsOnRealTrace() throws {
        let info = try Fixtures.run(["info", Fixtures.sample("k6.12-iommu.dat")])
        #expect(info.status == 0)
        #expect(info.stdout.contains("6.12.117+deb13-amd64") && info.stdout.contains("iommu_map"))
        let events = try Fixtures.run(["events", "--json", "--device", "0000:00:05.0", "--kind", "unmap", Fixtures.sample("k6.12-iommu.dat")])
        let lines = events.stdout.split(separator: "\n")
        #expect(lines.count == 270)
        let first = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(first["device"] as? String == "0000:00:05.0" && first["event"] as? String == "unmap_page")
        let count = try Fixtures.run(["events", "--count", Fixtures.sample("k6.12-iommu.dat")])
        #expect(count.stdout == "61594 events\n")
    }

    @Test func ruleDocsAreInSyncWithTheRules() throws {
        for rule in RuleRegistry.descriptions {
            let page = try String(contentsOf: Fixtures.root.appendingPathComponent(rule.docPath), encoding: .utf8)
            #expect(RuleDocs.isCurrent(rule, page: page), "\(rule.docPath) is stale: run `dma-trace rules --write-docs Docs/rules`")
        }
    }

    /// Every option that takes one of a set of names: a wrong value is answered with those
    /// names, the same ones the help lists (the issue: "Please provide one of '0', '1' or '2'").
    @Test func enumOptionsAnswerWithTheNamesOfTheHelp() throws {
        let trace = Fixtures.sample("k7.3-trace_pipe.txt")
        let cases: [(command: String, option: String, names: [String])] = [
            ("analyze", "--min-severity", ["note", "warning", "error"]),
            ("analyze", "--fail-on", ["error", "warning", "note", "none"]),
            ("analyze", "--format", ["text", "json"]),
            ("analyze", "--color", ["auto", "always", "never"]),
            ("audit", "--fail-on", ["error", "warning", "note", "none"]),
            ("audit", "--format", AuditReporters.all.map { $0.identifier }),
        ]
        for c in cases {
            let r = try Fixtures.run([c.command, c.option, "bogus", trace])
            #expect(r.status == 2, "\(c)")
            // ArgumentParser's wording: "'a' and 'b'" for two names, "'a', 'b' or 'c'" for more.
            let list = c.names.dropLast().map { "'\($0)'" }.joined(separator: ", ") + (c.names.count == 2 ? " and " : " or ") + "'\(c.names.last!)'"
            #expect(r.stderr.contains("Please provide one of \(list)."), "\(c.command) \(c.option): \(r.stderr)")
            let help = try Fixtures.run([c.command, "--help"]).stdout.replacingOccurrences(of: "\n", with: " ")
                .replacingOccurrences(of: "  +", with: " ", options: .regularExpression)
            #expect(help.contains("(values: \(c.names.joined(separator: ", "))"), "\(c.command) --help lists \(c.names)")
            for name in c.names {
                let ok = try Fixtures.run([c.command, c.option, name, trace])
                #expect(ok.status != 2 && !ok.stderr.contains("is invalid for"), "\(c.option) \(name) is accepted: \(ok.stderr)")
            }
        }
        // Names the help does not list: a rule, an event kind; the answer lists the known ones.
        let rule = try Fixtures.run(["analyze", "--rule", "bogus", trace])
        #expect(rule.status == 2 && rule.stderr.contains("unknown rule 'bogus'; the rules are double-mapping, "))
        let kind = try Fixtures.run(["events", "--kind", "bogus", trace])
        #expect(kind.status == 2 && kind.stderr.contains("unknown event kind 'bogus'; known: map_page, "))
        #expect(try Fixtures.run(["audit", "--timeout=-1", trace]).stderr.contains("--timeout takes seconds, 0 for no limit"))
    }
}
