import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// JUnit XML as GitLab and Jenkins read it: a test suite per trace, a test
/// case per rule that ran, failures carrying that rule's findings.
public enum JUnitReporter: AuditReporter {
    public static let identifier = "junit"
    public static let summary = "JUnit XML: a suite per trace, a test case per rule."

    public static func render(_ r: AuditResult) throws -> String {
        let root = XMLElement(name: "testsuites")
        root.addAttribute(XMLNode.attribute(withName: "name", stringValue: "dma-trace") as! XMLNode)
        var totalTests = 0, totalFailures = 0, totalErrors = 0
        for t in r.traces {
            let suite = XMLElement(name: "testsuite")
            suite.addAttribute(attr("name", t.path))
            guard t.document != nil else {
                let testcase = XMLElement(name: "testcase")
                testcase.addAttribute(attr("classname", "dma-trace." + suiteName(t.path)))
                testcase.addAttribute(attr("name", "read trace"))
                let error = element("error", t.error ?? "unreadable")
                error.addAttribute(attr("message", t.error ?? "unreadable"))
                error.addAttribute(attr("type", t.status.rawValue))
                testcase.addChild(error)
                suite.addChild(testcase)
                for (k, v) in [("tests", "1"), ("failures", "0"), ("errors", "1")] { suite.addAttribute(attr(k, v)) }
                totalTests += 1
                totalErrors += 1
                root.addChild(suite)
                continue
            }
            var failures = 0
            for rule in r.rulesRun {
                let testcase = XMLElement(name: "testcase")
                testcase.addAttribute(attr("classname", "dma-trace." + suiteName(t.path)))
                testcase.addAttribute(attr("name", rule.id))
                let hits = t.findings.filter { $0.rule == rule.id }
                // Notes are information, not failures; they travel as system-out.
                let failing = hits.filter { $0.severity >= .warning }
                if !failing.isEmpty {
                    failures += 1
                    let text = failing.map { "\($0.severity) \($0.device) at \(String(format: "%.6f", $0.timestamp)) s: \($0.message) [\($0.fingerprint)]" }
                        .joined(separator: "\n")
                    let failure = element("failure", text)
                    failure.addAttribute(attr("message", "\(failing.count) finding(s): \(failing[0].message)"))
                    failure.addAttribute(attr("type", failing.map(\.severity).max()!.description))
                    testcase.addChild(failure)
                }
                let notes = hits.filter { $0.severity == .note }
                if !notes.isEmpty {
                    testcase.addChild(element("system-out", notes.map { "note \($0.device): \($0.message)" }.joined(separator: "\n")))
                }
                suite.addChild(testcase)
            }
            for (k, v) in [("tests", "\(r.rulesRun.count)"), ("failures", "\(failures)"), ("errors", "0")] { suite.addAttribute(attr(k, v)) }
            totalTests += r.rulesRun.count
            totalFailures += failures
            root.addChild(suite)
        }
        for (k, v) in [("tests", "\(totalTests)"), ("failures", "\(totalFailures)"), ("errors", "\(totalErrors)")] { root.addAttribute(attr(k, v)) }
        let doc = XMLDocument(rootElement: root)
        doc.version = "1.0"
        doc.characterEncoding = "UTF-8"
        return String(decoding: doc.xmlData(options: [.nodePrettyPrint]), as: UTF8.self) + "\n"
    }

    /// Every value passes XMLText: trace text may hold characters XML 1.0 forbids.
    private static func attr(_ name: String, _ value: String) -> XMLNode {
        XMLNode.attribute(withName: name, stringValue: XMLText.sanitize(value)) as! XMLNode
    }

    private static func element(_ name: String, _ text: String) -> XMLElement {
        XMLElement(name: name, stringValue: XMLText.sanitize(text))
    }

    private static func suiteName(_ path: String) -> String {
        ((path as NSString).lastPathComponent as NSString).deletingPathExtension.replacingOccurrences(of: ".", with: "_")
    }
}
