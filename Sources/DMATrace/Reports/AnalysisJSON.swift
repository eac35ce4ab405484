import Foundation

/// The `--format json` document of one analyzed trace.
public struct AnalysisDocument: Codable, Sendable {
    public struct FindingJSON: Codable, Sendable {
        public var rule: String
        public var severity: Severity
        public var device: String
        public var timestamp: Double
        public var cpu: Int32
        public var task: String
        public var pid: Int32
        public var message: String
        public var fingerprint: String
        public var callSite: String?
        /// The call site's source line (`--debuginfo`).
        public var location: SourceLocation?
        public var occurrences: Int
        public var caveats: [String]
        public var marker: String?
        public var events: [EventJSON]
        public var stack: [String]?
        public var helpURI: String

        init(_ f: Finding) {
            rule = f.rule
            severity = f.severity
            device = f.device
            timestamp = f.seconds
            cpu = f.cpu
            task = f.task
            pid = f.pid
            message = f.message
            fingerprint = f.fingerprint
            callSite = f.callSite
            location = f.location
            occurrences = f.occurrences
            caveats = f.caveats
            marker = f.marker
            events = f.history.map(EventJSON.init)
            stack = f.stack?.frames
            helpURI = "Docs/rules/\(f.rule).md"
        }
    }

    public struct DeviceJSON: Codable, Sendable {
        public var profile: DeviceProfile
        public var path: DeviceProfile.Path
        public var coherence: DeviceProfile.Coherence
        public var cannotCheck: [String]
        /// Platform facts assumed for the device, each with its evidence and confidence.
        public var facts: [PlatformFact]?
    }

    public struct Summary: Codable, Sendable {
        public var errors = 0
        public var warnings = 0
        public var notes = 0
        public init() {}
    }

    public var tool = "dma-trace"
    public var trace: TraceFacts
    public var records: UInt64
    public var dmaEvents: UInt64
    public var firstTimestamp: Double?
    public var lastTimestamp: Double?
    public var lostGaps: [LostGap]
    public var unreadableLines: UInt64
    public var malformedRecords: UInt64
    public var notModeled: [String: UInt64]
    public var linearMapOffset: String?
    public var devices: [DeviceJSON]
    public var findings: [FindingJSON]
    public var summary: Summary
    /// Present when the analysis recorded one (`analyze --timeline`, the HTML report).
    public var timeline: Timeline?
    public var notices: [String]?
    public var iommuBalance: IOMMUBalance?
    /// Debug-info files refused or skipped, one sentence each (`--debuginfo`).
    public var debugInfoWarnings: [String]?

    public init(_ r: AnalysisResult, findings: [Finding]) {
        trace = r.facts
        records = r.stats.records
        dmaEvents = r.stats.dmaEvents
        firstTimestamp = r.stats.firstTimestamp.map { Double($0) / 1e9 }
        lastTimestamp = r.stats.lastTimestamp.map { Double($0) / 1e9 }
        lostGaps = r.lostGaps
        unreadableLines = r.stats.unreadableLines
        malformedRecords = r.stats.malformedRecords
        notModeled = r.stats.unknownEvents
        linearMapOffset = r.linearMapOffset.map(hex)
        devices = r.devices.map { DeviceJSON(profile: $0, path: $0.path, coherence: $0.coherence, cannotCheck: $0.limitations, facts: $0.facts) }
        notices = r.notices.isEmpty ? nil : r.notices
        iommuBalance = r.iommuBalance
        self.findings = findings.map(FindingJSON.init)
        summary = Summary.of(findings)
        timeline = r.timeline
        debugInfoWarnings = r.debugInfoWarnings.isEmpty ? nil : r.debugInfoWarnings
    }
}

extension AnalysisDocument.Summary {
    public static func of(_ findings: [AnalysisDocument.FindingJSON]) -> Self { of(severities: findings.map(\.severity)) }

    static func of(_ findings: [Finding]) -> Self { of(severities: findings.map(\.severity)) }

    static func of(severities: [Severity]) -> Self {
        var s = Self()
        for severity in severities {
            switch severity {
            case .error: s.errors += 1
            case .warning: s.warnings += 1
            case .note: s.notes += 1
            }
        }
        return s
    }
}
