/// What `info` prints: counts by event and by device from one pass.
public struct TraceInventory: Sendable, Codable {
    public var facts: TraceFacts
    public var stats: IngestStats
    public var eventCounts: [String: UInt64] = [:]
    public var deviceEventCounts: [String: [String: UInt64]] = [:]
    /// Lost events counted by the trace, per CPU in CPU order (a dictionary keyed by Int32
    /// encoded as an array in hash order: `info --json` changed from run to run).
    public var lostByCPU: [CPULoss] = []

    public struct CPULoss: Sendable, Codable, Equatable {
        public var cpu: Int32
        public var lost: UInt64
    }

    public init(facts: TraceFacts, stats: IngestStats) {
        self.facts = facts
        self.stats = stats
    }

    /// Reads the whole source once.
    public static func take(from source: DMAEventSource) throws -> TraceInventory {
        var counts: [String: UInt64] = [:]
        var perDevice: [String: [String: UInt64]] = [:]
        var lost: [Int32: UInt64] = [:]
        let stats = try source.read { event in
            let name = event.kind.name
            counts[name, default: 0] += 1
            if let d = event.device { perDevice[d, default: [:]][name, default: 0] += 1 }
            if case .lostEvents(let c) = event.kind { lost[event.cpu, default: 0] += c ?? 0 }
        }
        var inv = TraceInventory(facts: source.facts, stats: stats)
        inv.eventCounts = counts
        inv.deviceEventCounts = perDevice
        inv.lostByCPU = lost.sorted { $0.key < $1.key }.map { CPULoss(cpu: $0.key, lost: $0.value) }
        return inv
    }

    public var text: String {
        var out: [String] = []
        // Values come from the trace (and its file name): escaped for the terminal.
        func row(_ k: String, _ v: String) { out.append(k.padding(toLength: 13, withPad: " ", startingAt: 0) + TerminalText.escape(v)) }
        row("file:", facts.path)
        row("format:", facts.format.rawValue + (facts.fileVersion.map { " v\($0)" } ?? ""))
        row("kernel:", facts.kernelRelease ?? "(not recorded)")
        row("cpus:", facts.cpus.map(String.init) ?? "(unknown)")
        if let clock = facts.clock { row("clock:", clock) }
        if let first = stats.firstTimestamp, let last = stats.lastTimestamp {
            row("time span:", "\(formatSeconds(first)) .. \(formatSeconds(last)) s (\(formatSeconds(last - first)) s)")
        }
        row("generation:", facts.generation.description)
        if let notice = facts.dmaEventsNotice { row("note:", notice) }
        row("records:", "\(stats.records) (\(stats.dmaEvents) DMA-related events, \(stats.otherRecords) other records, \(stats.stackRecords) kernel stacks)")
        if stats.lostGaps == 0 {
            row("lost events:", "none reported")
        } else {
            var s = "\(stats.lostGaps) gaps, at least \(stats.lostEventsCounted) events lost"
            if stats.uncountedGaps > 0 { s += " (\(stats.uncountedGaps) gaps of unknown size)" }
            s += "; per CPU: " + lostByCPU.map { "cpu\($0.cpu)=\($0.lost)" }.joined(separator: " ")
            row("lost events:", s)
        }
        if stats.malformedRecords > 0 { row("malformed:", "\(stats.malformedRecords) records with unreadable fields (skipped)") }
        if stats.unreadableLines > 0 { row("unreadable:", "\(stats.unreadableLines) text lines") }
        if stats.lateLines > 0 { row("late lines:", "\(stats.lateLines) text lines out of time order beyond the reorder window (not applied)") }
        if !stats.unknownEvents.isEmpty {
            row("not modeled:", stats.unknownEvents.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
        out.append("events:")
        for (name, n) in eventCounts.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }) {
            out.append("  " + String(n).leftPadded(9) + "  " + TerminalText.escape(name))
        }
        out.append("devices:")
        for (device, counts) in deviceEventCounts.sorted(by: { $0.key < $1.key }) {
            let total = counts.values.reduce(0, +)
            out.append("  \(TerminalText.escape(device))  \(total) events: " + counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
        return out.joined(separator: "\n")
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
