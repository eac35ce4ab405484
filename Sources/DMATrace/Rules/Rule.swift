/// SARIF's levels, most severe last so `<` orders them.
public enum Severity: Int, Sendable, Codable, Comparable, CaseIterable, CustomStringConvertible {
    case note = 0
    case warning = 1
    case error = 2

    public static func < (a: Severity, b: Severity) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .note: "note"
        case .warning: "warning"
        case .error: "error"
        }
    }

    public init?(name: String) {
        guard let s = Severity.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = s
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let v = Severity(name: s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown severity \(s)"))
        }
        self = v
    }
}

/// A rule's example: a few ftrace event lines and whether the rule must fire on them.
/// Lines are "<seconds> <event>: <payload>"; `RuleExample.ftraceText` adds the task and CPU columns.
public struct RuleExample: Sendable {
    public var lines: [String]
    public var triggers: Bool
    /// For triggering examples: the severity the finding must have.
    public var severity: Severity?

    public init(triggers: Bool, severity: Severity? = nil, _ lines: [String]) {
        self.lines = lines
        self.triggers = triggers
        self.severity = severity
    }

    /// The example as a trace-cmd report text: what the tests and the docs feed the tool.
    public var ftraceText: String {
        var out = "cpus=2\n"
        for line in lines {
            var rest = Substring(line)
            var cpu = 0
            if rest.hasPrefix("cpu"), let space = rest.firstIndex(of: " ") {
                cpu = Int(rest.dropFirst(3).prefix(upTo: space)) ?? 0
                rest = rest[rest.index(after: space)...]
            }
            // Lines that are not events (lost-event markers) go in as they are.
            guard let space = rest.firstIndex(of: " "), let seconds = Double(rest[..<space]) else {
                out += line + "\n"
                continue
            }
            let ts = String(format: "%.6f", seconds)
            let task = rest.contains("print:") || rest.contains("tracing_mark_write") ? "init-1" : "kworker/0:1-42"
            out += "  \(task.padding(toLength: 16, withPad: " ", startingAt: 0)) [00\(cpu)] \(ts): \(rest[rest.index(after: space)...])\n"
        }
        return out
    }
}

/// Everything about a rule that does not change: SwiftLint's self-describing rules.
public struct RuleDescription: Sendable {
    /// Stable kebab-case identifier: baselines, configs and SARIF refer to it.
    public var id: String
    public var name: String
    public var severity: Severity
    public var summary: String
    public var examples: [RuleExample]

    public init(id: String, name: String, severity: Severity, summary: String, examples: [RuleExample]) {
        self.id = id
        self.name = name
        self.severity = severity
        self.summary = summary
        self.examples = examples
    }

    public var docPath: String { "Docs/rules/\(id).md" }
}

/// A rule judges model facts. Adding one means one new type and one line in `RuleRegistry`.
public protocol DMARule: AnyObject {
    static var description: RuleDescription { get }
    /// The facts `observe` looks at; only those are delivered.
    static var interests: Set<ModelFact.Kind> { get }
    init()
    func observe(_ fact: ModelFact, _ context: RuleContext)
    /// Called once after the last event.
    func finish(_ context: RuleContext)
}

extension DMARule {
    public func finish(_ context: RuleContext) {}
    var description: RuleDescription { Self.description }
}
