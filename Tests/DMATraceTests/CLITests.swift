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
}
