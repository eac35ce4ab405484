import Foundation

/// SARIF 2.1.0 as GitHub code scanning accepts it.
public enum SARIFReporter: AuditReporter {
    public static let identifier = "sarif"
    public static let summary = "SARIF 2.1.0 for GitHub code scanning and other SARIF consumers."
    static let schema = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

    struct Log: Encodable {
        var schema = SARIFReporter.schema
        var version = "2.1.0"
        var runs: [Run]
        enum CodingKeys: String, CodingKey { case schema = "$schema", version, runs }
    }
    struct Run: Encodable {
        var tool: Tool
        var artifacts: [Artifact]
        var results: [Result]
        var invocations: [Invocation]
    }
    struct Tool: Encodable { var driver: Driver }
    struct Driver: Encodable {
        var name = "dma-trace"
        var semanticVersion = DMATraceVersion.current
        var rules: [Rule]
    }
    struct Text: Encodable { var text: String }
    struct Rule: Encodable {
        var id: String
        var name: String
        var shortDescription: Text
        var fullDescription: Text
        var helpUri: String?
        var help: Help
        var defaultConfiguration: Configuration
    }
    struct Help: Encodable { var text: String; var markdown: String }
    struct Configuration: Encodable { var level: String }
    struct Artifact: Encodable { var location: ArtifactLocation }
    struct ArtifactLocation: Encodable { var uri: String; var index: Int? }
    struct Result: Encodable {
        var ruleId: String
        var ruleIndex: Int
        var level: String
        var message: Text
        var partialFingerprints: [String: String]
        var locations: [Location]
        var properties: [String: String]
    }
    struct Location: Encodable {
        var physicalLocation: PhysicalLocation
        var logicalLocations: [LogicalLocation]?
    }
    struct PhysicalLocation: Encodable { var artifactLocation: ArtifactLocation }
    struct LogicalLocation: Encodable { var name: String; var kind: String }
    struct Invocation: Encodable {
        var executionSuccessful: Bool
        var toolExecutionNotifications: [Notification]
    }
    struct Notification: Encodable {
        var level: String
        var message: Text
        var locations: [Location]
    }

    static func uri(_ path: String) -> String {
        // Relative paths stay relative (code scanning resolves them against the repository).
        path.split(separator: "/", omittingEmptySubsequences: false)
            .map { $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? String($0) }
            .joined(separator: "/")
    }

    /// SARIF rule names are identifier-like: double-mapping -> DoubleMapping.
    static func pascalCase(_ id: String) -> String {
        id.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    public static func render(_ r: AuditResult) throws -> String {
        let rules = r.rulesRun
        let ruleIndex = Dictionary(uniqueKeysWithValues: rules.enumerated().map { ($1.id, $0) })
        var results: [Result] = []
        var notifications: [Notification] = []
        var artifacts: [Artifact] = []
        for (i, t) in r.traces.enumerated() {
            let location = ArtifactLocation(uri: uri(t.path), index: i)
            artifacts.append(Artifact(location: ArtifactLocation(uri: uri(t.path), index: nil)))
            if t.document == nil {
                let reason = (t.status == .failed ? "analysis failed: " : "") + (t.error ?? "\(t.path): unreadable")
                notifications.append(Notification(level: "error", message: Text(text: reason),
                                                  locations: [Location(physicalLocation: PhysicalLocation(artifactLocation: location), logicalLocations: nil)]))
            }
            for f in t.findings {
                let logical = f.callSite.map { [LogicalLocation(name: $0, kind: "function")] }
                results.append(Result(ruleId: f.rule, ruleIndex: ruleIndex[f.rule] ?? 0, level: f.severity.description,
                                      message: Text(text: "\(f.device): \(f.message)"),
                                      partialFingerprints: ["dmaTraceFingerprint/v1": f.fingerprint],
                                      locations: [Location(physicalLocation: PhysicalLocation(artifactLocation: location),
                                                           logicalLocations: logical)],
                                      properties: ["device": f.device, "timestamp": String(format: "%.9f", f.timestamp)]))
            }
        }
        let driver = Driver(rules: rules.map { rule in
            let page = RuleDocs.installedPage(rule)
            return Rule(id: rule.id, name: pascalCase(rule.id), shortDescription: Text(text: rule.summary),
                        fullDescription: Text(text: "\(rule.name): \(rule.summary)"),
                        helpUri: RuleDocs.pageURL(rule)?.absoluteString,
                        help: Help(text: rule.summary, markdown: page ?? "**\(rule.name)**\n\n\(rule.summary)"),
                        defaultConfiguration: Configuration(level: rule.severity.description))
        })
        let log = Log(runs: [Run(tool: Tool(driver: driver), artifacts: artifacts, results: results,
                                 invocations: [Invocation(executionSuccessful: r.unreadable.isEmpty, toolExecutionNotifications: notifications)])])
        return String(decoding: try JSONEncoder.stable(pretty: true).encode(log), as: UTF8.self) + "\n"
    }
}

public enum DMATraceVersion {
    public static let current = "0.1.0"
}
