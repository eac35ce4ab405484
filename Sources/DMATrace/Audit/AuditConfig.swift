import Foundation
import Yams

/// `.dma-trace.yml`: rules to disable, severity overrides, devices to include
/// or exclude, and suppressions (rule + device + stack function, each with a
/// reason). Any mistake is an error with its line number.
public struct AuditConfig: Sendable, Equatable {
    public struct Suppression: Sendable, Equatable {
        public var rule: String
        public var device: String?
        public var function: String?
        public var reason: String
        public var line: Int
    }

    public var disabledRules: Set<String> = []
    public var severityOverrides: [String: Severity] = [:]
    public var includeDevices: Set<String> = []
    public var excludeDevices: Set<String> = []
    public var suppressions: [Suppression] = []
    /// `debuginfo:` paths (relative ones against the configuration file's folder) and
    /// `module_base:` load addresses.
    public var debugInfo = DebugInfoOptions()
    /// `source_root:` the driver's source checkout, for SARIF (relative: to the file's folder).
    public var sourceRoot: String?

    public init() {}

    public struct ConfigError: Error, CustomStringConvertible {
        public var path: String
        public var line: Int?
        public var problem: String
        public var description: String { "\(path)\(line.map { ":\($0)" } ?? ""): \(problem)" }
    }

    public static let fileName = ".dma-trace.yml"

    public static func load(path: String) throws -> AuditConfig {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError(path: path, line: nil, problem: "cannot be read")
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String) throws -> AuditConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let e as YamlError {
            throw ConfigError(path: path, line: Self.line(of: e), problem: "is not valid YAML: \(e)")
        }
        var config = AuditConfig()
        guard let root else { return config }
        func fail(_ node: Node, _ problem: String) -> ConfigError {
            ConfigError(path: path, line: node.mark.map { $0.line }, problem: problem)
        }
        guard let top = root.mapping else { throw fail(root, "the top level must be a mapping") }
        let folder = (path as NSString).deletingLastPathComponent
        func resolved(_ p: String) -> String {
            p.hasPrefix("/") || folder.isEmpty ? p : (folder as NSString).appendingPathComponent(p)
        }
        let ruleIDs = Set(RuleRegistry.descriptions.map(\.id))
        func ruleID(_ node: Node) throws -> String {
            guard let id = node.string else { throw fail(node, "a rule id must be a string") }
            guard ruleIDs.contains(id) else { throw fail(node, "unknown rule '\(id)'") }
            return id
        }
        func strings(_ node: Node, _ what: String) throws -> [String] {
            guard let seq = node.sequence else { throw fail(node, "\(what) must be a list") }
            return try seq.map { item in
                guard let s = item.string else { throw fail(item, "\(what) entries must be strings") }
                return s
            }
        }
        for (keyNode, value) in top {
            guard let key = keyNode.string else { throw fail(keyNode, "keys must be strings") }
            switch key {
            case "disabled_rules":
                guard let seq = value.sequence else { throw fail(value, "disabled_rules must be a list of rule ids") }
                for item in seq { config.disabledRules.insert(try ruleID(item)) }
            case "severity":
                guard let map = value.mapping else { throw fail(value, "severity must map rule ids to note, warning or error") }
                for (k, v) in map {
                    let id = try ruleID(k)
                    guard let name = v.string, let sev = Severity(name: name) else {
                        throw fail(v, "severity of \(id) must be note, warning or error")
                    }
                    config.severityOverrides[id] = sev
                }
            case "devices":
                guard let map = value.mapping else { throw fail(value, "devices must have include and/or exclude lists") }
                for (k, v) in map {
                    switch k.string {
                    case "include": config.includeDevices.formUnion(try strings(v, "devices.include"))
                    case "exclude": config.excludeDevices.formUnion(try strings(v, "devices.exclude"))
                    default: throw fail(k, "devices takes include and exclude, not '\(k.string ?? "?")'")
                    }
                }
            case "suppressions":
                guard let seq = value.sequence else { throw fail(value, "suppressions must be a list") }
                for item in seq {
                    guard let map = item.mapping else { throw fail(item, "a suppression must be a mapping with rule and reason") }
                    var rule: String?, device: String?, function: String?, reason: String?
                    for (k, v) in map {
                        switch k.string {
                        case "rule": rule = try ruleID(v)
                        case "device": device = v.string
                        case "function": function = v.string
                        case "reason": reason = v.string
                        default: throw fail(k, "a suppression takes rule, device, function and reason, not '\(k.string ?? "?")'")
                        }
                    }
                    guard let rule else { throw fail(item, "a suppression needs a rule") }
                    guard let reason, !reason.trimmingCharacters(in: .whitespaces).isEmpty else {
                        throw fail(item, "a suppression needs a reason")
                    }
                    config.suppressions.append(Suppression(rule: rule, device: device, function: function, reason: reason,
                                                           line: item.mark?.line ?? 0))
                }
            case "debuginfo":
                let list = try value.string.map { [$0] } ?? strings(value, "debuginfo")
                for p in list {
                    let r = resolved(p)
                    guard FileManager.default.fileExists(atPath: r) else { throw fail(value, "debuginfo: \(p): no such file or folder") }
                    config.debugInfo.paths.append(r)
                }
            case "module_base":
                guard let map = value.mapping else { throw fail(value, "module_base must map module names to .text addresses (hex)") }
                for (k, v) in map {
                    guard let name = k.string, let addr = v.string,
                          let (module, base) = DebugInfoOptions.parseModuleBase("\(name)=\(addr)") else {
                        throw fail(v, "module_base entries are NAME: 0xADDR (what /sys/module/NAME/sections/.text says)")
                    }
                    config.debugInfo.moduleBases[module] = base
                }
            case "source_root":
                guard let p = value.string else { throw fail(value, "source_root must be a folder path") }
                config.sourceRoot = resolved(p)
            default:
                throw fail(keyNode, "unknown key '\(key)' (expected disabled_rules, severity, devices, suppressions, debuginfo, module_base, source_root)")
            }
        }
        return config
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }

    /// Applies the configuration to one trace's findings; returns what is kept
    /// and what a suppression removed (with its reason).
    public func apply(_ findings: [AnalysisDocument.FindingJSON]) -> (kept: [AnalysisDocument.FindingJSON], suppressed: [(AnalysisDocument.FindingJSON, Suppression)]) {
        var kept: [AnalysisDocument.FindingJSON] = []
        var suppressed: [(AnalysisDocument.FindingJSON, Suppression)] = []
        for var f in findings {
            if disabledRules.contains(f.rule) { continue }
            if !includeDevices.isEmpty && !includeDevices.contains(f.device) { continue }
            if excludeDevices.contains(f.device) { continue }
            if let s = suppressions.first(where: { $0.matches(f) }) {
                suppressed.append((f, s))
                continue
            }
            if let sev = severityOverrides[f.rule] { f.severity = sev }
            kept.append(f)
        }
        return (kept, suppressed)
    }
}

extension AuditConfig.Suppression {
    func matches(_ f: AnalysisDocument.FindingJSON) -> Bool {
        guard f.rule == rule else { return false }
        if let device, device != f.device { return false }
        if let function {
            let frames = (f.stack ?? []).map { $0.split(separator: "+").first.map(String.init) ?? $0 }
            return f.callSite == function || frames.contains(function)
        }
        return true
    }
}
