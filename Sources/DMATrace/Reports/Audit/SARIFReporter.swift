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
        /// SRCROOT: the driver's source checkout that source locations are relative to.
        var originalUriBaseIds: [String: BaseLocation]?
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
    struct ArtifactLocation: Encodable { var uri: String; var uriBaseId: String? = nil; var index: Int? }
    struct BaseLocation: Encodable { var uri: String?; var description: Text? }
    struct Region: Encodable { var startLine: Int }
    struct Result: Encodable {
        var ruleId: String
        var ruleIndex: Int
        var level: String
        var message: Text
        var partialFingerprints: [String: String]
        var locations: [Location]
        var relatedLocations: [Location]?
        var properties: [String: String]
    }
    struct Location: Encodable {
        var id: Int? = nil
        var physicalLocation: PhysicalLocation
        var logicalLocations: [LogicalLocation]?
        var message: Text? = nil
    }
    struct PhysicalLocation: Encodable { var artifactLocation: ArtifactLocation; var region: Region? = nil }
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

    /// Where the SARIF is read (code scanning, a reviewer's viewer), an absolute path of
    /// the machine that wrote it means nothing: a trace is named relative to the working
    /// directory.
    static func relativeToWorkingDirectory(_ path: String, cwd: String = FileManager.default.currentDirectoryPath) -> String {
        var clean = (path as NSString).standardizingPath
        while clean.hasPrefix("./") { clean.removeFirst(2) }
        guard clean.hasPrefix("/") else { return clean }
        let from = (cwd as NSString).standardizingPath.split(separator: "/")
        let to = clean.split(separator: "/")
        var common = 0
        while common < from.count && common < to.count && from[common] == to[common] { common += 1 }
        let ups = Array(repeating: "..", count: from.count - common)
        let rest = to[common...].map(String.init)
        let joined = (ups + rest).joined(separator: "/")
        return joined.isEmpty ? "." : joined
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
        var sourceArtifacts: [String] = []
        var usesSourceRoot = false
        for (i, t) in r.traces.enumerated() {
            let traceURI = uri(relativeToWorkingDirectory(t.path))
            let location = ArtifactLocation(uri: traceURI, index: i)
            artifacts.append(Artifact(location: ArtifactLocation(uri: traceURI, index: nil)))
            if t.document == nil {
                let reason = (t.status == .failed ? "analysis failed: " : "") + (t.error ?? "\(t.path): unreadable")
                notifications.append(Notification(level: "error", message: Text(text: reason),
                                                  locations: [Location(physicalLocation: PhysicalLocation(artifactLocation: location), logicalLocations: nil)]))
            }
            for f in t.findings {
                let logical = f.callSite.map { [LogicalLocation(name: $0, kind: "function")] }
                let traceLocation = Location(physicalLocation: PhysicalLocation(artifactLocation: location), logicalLocations: logical)
                var message = "\(f.device): \(f.message)"
                var locations = [traceLocation]
                var related: [Location]?
                if let l = f.location {
                    if let source = sourcePath(l.file, root: r.sourceRoot) {
                        usesSourceRoot = true
                        if !sourceArtifacts.contains(source) { sourceArtifacts.append(source) }
                        locations = [Location(physicalLocation: PhysicalLocation(
                            artifactLocation: ArtifactLocation(uri: uri(source), uriBaseId: "SRCROOT", index: nil),
                            region: Region(startLine: l.line)), logicalLocations: logical)]
                        related = [Location(id: 1, physicalLocation: PhysicalLocation(artifactLocation: location), logicalLocations: nil,
                                            message: Text(text: "the trace this was found in"))]
                    } else {
                        // A file outside the source root cannot be shown on the code: say where it is.
                        message += " (at \(l.text))"
                    }
                }
                var properties = ["device": f.device, "timestamp": String(format: "%.9f", f.timestamp)]
                if let l = f.location { properties["sourceLine"] = l.text }
                results.append(Result(ruleId: f.rule, ruleIndex: ruleIndex[f.rule] ?? 0, level: f.severity.description,
                                      message: Text(text: message),
                                      partialFingerprints: ["dmaTraceFingerprint/v1": f.fingerprint],
                                      locations: locations, relatedLocations: related, properties: properties))
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
        artifacts += sourceArtifacts.map { Artifact(location: ArtifactLocation(uri: uri($0), uriBaseId: "SRCROOT", index: nil)) }
        let base: [String: BaseLocation]? = usesSourceRoot
            ? ["SRCROOT": BaseLocation(uri: r.sourceRoot?.uri,
                                       description: Text(text: "the checkout of the driver's source (dma-trace --source-root)"))]
            : nil
        let log = Log(runs: [Run(tool: Tool(driver: driver), originalUriBaseIds: base, artifacts: artifacts, results: results,
                                 invocations: [Invocation(executionSuccessful: r.unreadable.isEmpty, toolExecutionNotifications: notifications)])])
        return String(decoding: try JSONEncoder.stable(pretty: true).encode(log), as: UTF8.self) + "\n"
    }
}

extension SARIFReporter {
    /// A source file as a path relative to SRCROOT: found under --source-root, or, with
    /// no root given, a relative DWARF path (in-tree code is named relative to the kernel
    /// tree). nil when it cannot be placed in the checkout.
    static func sourcePath(_ file: String, root: SourceRoot?) -> String? {
        if let root { return root.relativePath(file) }
        let clean = (file as NSString).standardizingPath
        return clean.hasPrefix("/") || clean.hasPrefix("..") ? nil : clean
    }
}

public enum DMATraceVersion {
    public static let current = "0.1.0"
}
