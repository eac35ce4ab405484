/// Tokenizes one ftrace text line: `comm-pid [cpu] (flags) ts: event: payload`,
/// as printed by tracefs `trace`, `trace_pipe` and `trace-cmd report`.
struct TextRecordLine {
    /// Bytes of the line: valid while the line is being fed.
    var task: TextBytes
    var pid: Int32
    var cpu: Int32
    /// Nanoseconds (text carries microseconds).
    var timestamp: UInt64
    var event: TextBytes
    var payload: TextBytes
    /// The event's system when the line names it (`perf script`: `dma:dma_map_page`).
    var system: TextBytes? = nil
    /// Callchain frames follow the line directly (`perf script -g`), with no stack header.
    var framesFollow = false
}

enum TextLine {
    case record(TextRecordLine)
    /// `CPU:N [LOST N EVENTS]`, `CPU:N [N EVENTS DROPPED]`, `CPU:N [EVENTS DROPPED]`.
    case lost(cpu: Int32, count: UInt64?)
    /// ` => symbol+0x1/0x2` or `=> symbol (ffffffff81000000)` inside a stack block.
    case stackFrame(String)
    /// Headers, `cpus=N`, comments, blank lines.
    case header(cpus: Int?)
    /// tracefs: "# entries-in-buffer/entries-written: 10/25   #P:2": in overwrite
    /// mode the difference was lost before the first line.
    case bufferEntries(inBuffer: UInt64, written: UInt64, cpus: Int?)
    case unreadable(String)
    /// `perf script --header`: `# os release : 6.12.1` and `# event : name = dma:dma_map_page, ...`.
    case kernelRelease(String)
    case eventFormat(String)
}

enum TextLineParser {
    static func parse(_ line: TextBytes) -> TextLine {
        var i = 0
        while i < line.count, line[i] == 0x20 || line[i] == 0x09 { i += 1 }
        let trimmed = line.slice(i, line.count)
        guard let first = trimmed.first else { return .header(cpus: nil) }
        // Event lines are nearly all of a trace: only the other kinds are read as Strings.
        if first == 0x23 || first == 0x63 || first == 0x76 || first == 0x43,
           let other = otherLine(trimmed.substring) { return other }
        if trimmed.hasPrefix("=>") { return .stackFrame(stackFrameSymbol(trimmed.dropFirst(2))) }
        if let record = recordLine(line) { return .record(record) }
        return .unreadable("not an ftrace event line")
    }

    /// Headers, `cpus=N`, `version =` and `CPU:N [LOST ...]` lines; nil for anything else.
    private static func otherLine(_ trimmed: Substring) -> TextLine? {
        if trimmed.first == "#" {
            // tracefs: "# entries-in-buffer/entries-written: 10/10   #P:2"
            let cpus = trimmed.range(of: "#P:").flatMap { Int(trimmed[$0.upperBound...].prefix(while: { $0.isNumber })) }
            if let r = trimmed.range(of: "entries-in-buffer/entries-written:") {
                let counts = trimmed[r.upperBound...].drop(while: { $0 == " " }).prefix(while: { $0 != " " }).split(separator: "/")
                if counts.count == 2, let a = UInt64(counts[0]), let b = UInt64(counts[1]) {
                    return .bufferEntries(inBuffer: a, written: b, cpus: cpus)
                }
            }
            if let cpus { return .header(cpus: cpus) }
            return .header(cpus: nil)
        }
        if trimmed.hasPrefix("cpus=") { return .header(cpus: Int(trimmed.dropFirst(5).prefix(while: { $0.isNumber }))) }
        if trimmed.hasPrefix("version =") || trimmed.hasPrefix("version=") { return .header(cpus: nil) }
        if trimmed.hasPrefix("CPU:"), let lost = lostLine(trimmed) { return lost }
        if trimmed.hasPrefix("CPU ") && trimmed.contains("is empty") { return .header(cpus: nil) }
        return nil
    }

    private static func lostLine(_ s: Substring) -> TextLine? {
        var rest = s.dropFirst(4)
        let digits = rest.prefix(while: { $0.isNumber })
        guard let cpu = Int32(digits) else { return nil }
        rest = rest.dropFirst(digits.count).drop(while: { $0 == " " })
        guard rest.first == "[", let close = rest.firstIndex(of: "]") else { return nil }
        let inner = rest[rest.index(after: rest.startIndex)..<close]
        let words = inner.split(separator: " ")
        if words.count == 3, words[0] == "LOST", words[2] == "EVENTS", let n = UInt64(words[1]) {
            return .lost(cpu: cpu, count: n)
        }
        if words.count == 3, words[1] == "EVENTS", words[2] == "DROPPED", let n = UInt64(words[0]) {
            return .lost(cpu: cpu, count: n)
        }
        if words.count == 2, words[0] == "EVENTS", words[1] == "DROPPED" { return .lost(cpu: cpu, count: nil) }
        return nil
    }

    /// Keeps `name+0xoff` (dropping the `/0xsize` part and a trailing address).
    private static func stackFrameSymbol(_ s: TextBytes) -> String {
        var t = s.droppingLeading(0x20)
        if let paren = t.firstIndex(of: 0x28) { t = t.slice(0, paren) }
        t = t.droppingTrailing(0x20)
        if let slash = t.firstIndex(of: 0x2F), t.slice(0, slash).contains("+0x") { t = t.slice(0, slash) }
        return t.string
    }

    static func recordLine(_ line: TextBytes) -> TextRecordLine? {
        // The CPU column "[NNN]" is the anchor: task names may contain spaces,
        // dashes and brackets, so search from the left for " [digits]".
        var search = 0
        while let open = line.firstIndex(of: 0x5B, from: search) {
            let afterOpen = open + 1
            var close = afterOpen
            while close < line.count, line[close] >= 0x30 && line[close] <= 0x39 { close += 1 }
            if close > afterOpen, close < line.count, line[close] == 0x5D, open > 0, line[open - 1] == 0x20,
               let parsed = parseAround(line, open: open, close: close) {
                return parsed
            }
            search = afterOpen
        }
        return nil
    }

    private static var kernelStackName: TextBytes { TextBytes(static: "kernel_stack") }
    private static var userStackName: TextBytes { TextBytes(static: "user_stack") }

    private static func parseAround(_ line: TextBytes, open: Int, close: Int) -> TextRecordLine? {
        guard let cpu = line.slice(open + 1, close).integer(Int32.self) else { return nil }
        var left = line.slice(0, open).droppingTrailing(0x20)
        // Optional "(  tgid)" column.
        if left.last == 0x29, let p = left.lastIndex(of: 0x28) {
            left = left.slice(0, p).droppingTrailing(0x20)
        }
        left = left.droppingLeading(0x20)
        guard let dash = left.lastIndex(of: 0x2D), let pid = left.slice(dash + 1, left.count).integer(Int32.self) else {
            return nil
        }
        let task = left.slice(0, dash)
        // After the CPU: optional irq-flags column, then "seconds.micros:".
        var pos = close + 1
        var timestamp: UInt64?
        for _ in 0..<3 {
            while pos < line.count, line[pos] == 0x20 { pos += 1 }
            var end = pos
            while end < line.count, line[end] != 0x20 { end += 1 }
            let token = line.slice(pos, end)
            pos = end
            if token.last == 0x3A, let ts = parseTimestamp(token.dropLast()) {
                timestamp = ts
                break
            }
        }
        guard let timestamp else { return nil }
        while pos < line.count, line[pos] == 0x20 { pos += 1 }
        let rest = line.slice(pos, line.count)
        // tracefs prints stack records without an event name.
        if rest.hasPrefix("<stack trace>") {
            return TextRecordLine(task: task, pid: pid, cpu: cpu, timestamp: timestamp, event: kernelStackName, payload: rest)
        }
        if rest.hasPrefix("<user stack trace>") {
            return TextRecordLine(task: task, pid: pid, cpu: cpu, timestamp: timestamp, event: userStackName, payload: rest)
        }
        guard let colon = rest.firstIndex(of: 0x3A) else { return nil }
        let event = rest.slice(0, colon)
        guard !event.isEmpty, !event.contains(0x20) else { return nil }
        let payload = rest.slice(colon + 1, rest.count).droppingLeading(0x20)
        return TextRecordLine(task: task, pid: pid, cpu: cpu, timestamp: timestamp, event: event, payload: payload)
    }

    static func parseTimestamp(_ s: Substring) -> UInt64? {
        var copy = String(s)
        return copy.withUTF8 { parseTimestamp(TextBytes($0)) }
    }

    /// "12.345678" -> nanoseconds, exact (no floating point).
    static func parseTimestamp(_ s: TextBytes) -> UInt64? {
        var secs: UInt64 = 0, frac: UInt64 = 0, fracDigits = 0, intDigits = 0
        var seenDot = false
        for i in 0..<s.count {
            let b = s[i]
            if b == 0x2E {
                guard !seenDot else { return nil }
                seenDot = true
                continue
            }
            guard b >= 0x30 && b <= 0x39 else { return nil }
            let d = UInt64(b - 0x30)
            if seenDot {
                fracDigits += 1
                guard fracDigits <= 9 else { return nil }
                frac = frac * 10 + d
            } else {
                intDigits += 1
                let (m, o1) = secs.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(d)
                guard !o1, !o2 else { return nil }
                secs = a
            }
        }
        guard intDigits > 0, !seenDot || fracDigits > 0 else { return nil }
        for _ in fracDigits..<9 { frac *= 10 }
        let (ns, overflow) = secs.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow, !ns.addingReportingOverflow(frac).overflow else { return nil }
        return ns + frac
    }
}
