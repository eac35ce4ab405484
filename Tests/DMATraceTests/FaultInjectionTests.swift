import Foundation
import Testing
@testable import DMATrace

/// The fault-injection recordings (SampleTraces/faultinject, made by SampleTraces/lab/faultinject):
/// inside each scenario's marker window, exactly the expected findings at the expected severity,
/// per variant (a variant that cannot show a bug expects nothing, with the reason written down).
@Suite struct FaultInjectionTests {
    struct Expected: Decodable, Hashable, CustomStringConvertible {
        var rule: String
        var severity: String
        var description: String { "\(rule):\(severity)" }
    }
    struct Override: Decodable {
        var variant: [String]
        var expect: [Expected]
        var why: String
        /// Findings a documented kernel tracing gap produces on this variant (allowed, not required).
        var tolerate: [Expected]?
    }
    struct Scenario: Decodable {
        var name: String
        var expect: [Expected]
        var overrides: [Override]
    }
    struct Spec: Decodable {
        var scenarios: [Scenario]
    }

    /// The edu device the module binds (QEMU slot 6 in every variant of the lab).
    static let device = "0000:00:06.0"
    static let folder = Fixtures.samples.appendingPathComponent("faultinject")

    static var variants: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { $0.hasSuffix(".dat") }.map { String($0.dropLast(4)) }.sorted()
    }

    static func spec() throws -> Spec {
        let url = Fixtures.samples.appendingPathComponent("lab/faultinject/scenarios.json")
        return try JSONDecoder().decode(Spec.self, from: Data(contentsOf: url))
    }

    @Test func everyVariantIsRecorded() {
        #expect(Self.variants.count >= 5, "\(Self.variants)")
    }

    @Test(arguments: variants)
    func findingsMatchEachScenario(_ variant: String) throws {
        try Self.checkScenarios(path: Self.folder.appendingPathComponent(variant + ".dat").path, variant: variant)
    }

    /// Inside each scenario's marker window, exactly what scenarios.json expects of `variant`;
    /// outside every window, nothing at warning or above. Shared by every recording of the
    /// dmafi module, whatever tool recorded it.
    static func checkScenarios(path: String, variant: String) throws {
        let label = (path as NSString).lastPathComponent
        let events = try Fixtures.events(path: path)
        var windows: [String: (begin: UInt64, end: UInt64)] = [:]
        for e in events {
            guard case .marker(let text) = e.kind else { continue }
            if text.hasPrefix("FI: begin ") { windows[String(text.dropFirst(10)), default: (0, 0)].begin = e.timestamp }
            if text.hasPrefix("FI: end ") { windows[String(text.dropFirst(8)), default: (0, 0)].end = e.timestamp }
        }
        let result = try Analyzer.analyze(path: path)
        let spec = try spec()
        var judged = Set<Int>()
        for scenario in spec.scenarios {
            let window = try #require(windows[scenario.name], "\(label): no markers for \(scenario.name)")
            let override = scenario.overrides.first { $0.variant.contains(variant) }
            let expected = Set(override?.expect ?? scenario.expect)
            let tolerated = Set(override?.tolerate ?? [])
            var found = Set<Expected>()
            for (i, f) in result.findings.enumerated()
            where f.device == device && f.timestamp >= window.begin && f.timestamp <= window.end {
                found.insert(Expected(rule: f.rule, severity: f.severity.description))
                judged.insert(i)
            }
            #expect(found.subtracting(tolerated) == expected.subtracting(tolerated) && expected.isSubset(of: found),
                    "\(label) \(scenario.name): expected \(expected.sorted { $0.description < $1.description }), found \(found.sorted { $0.description < $1.description })")
        }
        let stray = result.findings.enumerated().filter { !judged.contains($0.offset) && $0.element.severity >= .warning }
        #expect(stray.isEmpty, "\(label): findings outside the scenarios: \(stray.map { "\($0.element.device) \($0.element.rule): \($0.element.message)" })")
    }
}
