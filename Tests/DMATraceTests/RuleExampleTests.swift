import Testing
@testable import DMATrace

/// SwiftLint's idea: every rule's own examples are its tests.
@Suite struct RuleExampleTests {
    static let cases: [(String, Int)] = RuleRegistry.descriptions.flatMap { d in d.examples.indices.map { (d.id, $0) } }

    @Test(arguments: cases)
    func example(ruleID: String, index: Int) throws {
        let rule = try #require(RuleRegistry.description(of: ruleID))
        let example = rule.examples[index]
        let result = try Fixtures.analyze(text: example.ftraceText)
        let hits = result.findings.filter { $0.rule == ruleID }
        if example.triggers {
            #expect(!hits.isEmpty, "\(ruleID) example \(index) should trigger:\n\(example.ftraceText)")
            if let severity = example.severity {
                #expect(hits.contains { $0.severity == severity },
                        "\(ruleID) example \(index): expected \(severity), got \(hits.map(\.severity))")
            }
        } else {
            #expect(hits.isEmpty, "\(ruleID) example \(index) must not trigger, got: \(hits.map(\.message))")
        }
    }

    @Test func everyRuleHasBothKindsOfExample() {
        for rule in RuleRegistry.descriptions {
            #expect(rule.examples.contains { $0.triggers }, "\(rule.id) has no triggering example")
            #expect(rule.examples.contains { !$0.triggers }, "\(rule.id) has no non-triggering example")
        }
    }

    @Test func ruleIDsAreStableKebabCaseAndUnique() {
        let ids = RuleRegistry.descriptions.map(\.id)
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(id.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" }, "\(id) is not kebab-case")
        }
    }

    @Test func everyRuleHasADocPage() throws {
        for rule in RuleRegistry.descriptions {
            let page = Fixtures.root.appendingPathComponent(rule.docPath).path
            #expect(FileManager.default.fileExists(atPath: page), "missing \(rule.docPath)")
        }
    }
}

import Foundation
