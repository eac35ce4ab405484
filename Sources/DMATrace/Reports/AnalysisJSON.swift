import Foundation

/// The `--format json` document of one analyzed trace.
public struct AnalysisDocument: Encodable {
    public struct FindingJSON: Encodable {
        var rule: String
        var severity: Severity
        var device: String
        var timestamp: Double
        var cpu: Int32
        var task: String
        var pid: Int32
        var message: String
        var fingerprint: String
        var callSite: String?
        var occurrences: Int
        var caveats: [String]
        var marker: String?
        var events: [EventJSON]
        var stack: [String]?
        var helpURI: String

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
            occurrences = f.occurrences
            caveats = f.caveats
            marker = f.marker
            events = f.history.map(EventJSON.init)
            stack = f.stack?.frames
            helpURI = "Docs/rules/\(f.rule).md"
        }
    }

    public struct DeviceJSON: Encodable {
        var profile: DeviceProfile
        var path: DeviceProfile.Path
        var coherence: DeviceProfile.Coherence
        var cannotCheck: [String]
    }

    public struct Summary: Encodable {
        var errors = 0
        var warnings = 0
        var notes = 0
    }

    var tool = "dma-trace"
    var trace: TraceFacts
    var records: UInt64
    var dmaEvents: UInt64
    var firstTimestamp: Double?
    var lastTimestamp: Double?
    var lostGaps: [LostGap]
    var unreadableLines: UInt64
    var malformedRecords: UInt64
    var notModeled: [String: UInt64]
    var linearMapOffset: String?
    var devices: [DeviceJSON]
    var findings: [FindingJSON]
    var summary: Summary

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
        devices = r.devices.map { DeviceJSON(profile: $0, path: $0.path, coherence: $0.coherence, cannotCheck: $0.limitations) }
        self.findings = findings.map(FindingJSON.init)
        summary = Summary.of(findings)
    }
}

extension AnalysisDocument.Summary {
    static func of(_ findings: [Finding]) -> Self {
        var s = Self()
        for f in findings {
            switch f.severity {
            case .error: s.errors += 1
            case .warning: s.warnings += 1
            case .note: s.notes += 1
            }
        }
        return s
    }
}
