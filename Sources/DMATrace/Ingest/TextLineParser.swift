/// Tokenizes one ftrace text line: `comm-pid [cpu] (flags) ts: event: payload`,
/// as printed by tracefs `trace`, `trace_pipe` and `trace-cmd report`.
struct TextRecordLine {
    var task: Substring
    var pid: Int32
    var cpu: Int32
    /// Nanoseconds (text carries microseconds).
    var timestamp: UInt64
    var event: Substring
    var payload: Substring
    /// The event's system when the line names it (`perf script`: `dma:dma_map_page`).
    var system: Substring? = nil
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
    static func parse(_ line: Substring) -> TextLine {
        let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
        if trimmed.isEmpty { return .header(cpus: nil) }
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
        if trimmed.hasPrefix("=>") {
            return .stackFrame(stackFrameSymbol(trimmed.dropFirst(2)))
        }
        if trimmed.hasPrefix("CPU:"), let lost = lostLine(trimmed) { return lost }
        if trimmed.hasPrefix("CPU ") && trimmed.contains("is empty") { return .header(cpus: nil) }
        if let record = recordLine(line) { return .record(record) }
        return .unreadable("not an ftrace event line")
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
    private static func stackFrameSymbol(_ s: Substring) -> String {
        var t = s.drop(while: { $0 == " " })
        if let paren = t.firstIndex(of: "(") { t = t[..<paren] }
        while t.last == " " { t = t.dropLast() }
        if let slash = t.firstIndex(of: "/"), t[..<slash].contains("+0x") { t = t[..<slash] }
        return String(t)
    }

    static func recordLine(_ line: Substring) -> TextRecordLine? {
        // The CPU column "[NNN]" is the anchor: task names may contain spaces,
        // dashes and brackets, so search from the left for " [digits]".
        // Byte-wise (the anchor is ASCII): much faster than Character scanning.
        let bytes = line.utf8
        var search = bytes.startIndex
        while let open = bytes[search...].firstIndex(of: 0x5B) {
            let afterOpen = bytes.index(after: open)
            let digitBytes = bytes[afterOpen...].prefix(while: { $0 >= 0x30 && $0 <= 0x39 })
            let digits = line[digitBytes.startIndex..<digitBytes.endIndex]
            let close = digitBytes.endIndex
            if !digitBytes.isEmpty, close < bytes.endIndex, bytes[close] == 0x5D,
               open > bytes.startIndex, bytes[bytes.index(before: open)] == 0x20 {
                if let parsed = parseAround(line, open: open, cpuDigits: digits, afterClose: bytes.index(after: close)) {
                    return parsed
                }
            }
            search = afterOpen
        }
        return nil
    }

    private static func parseAround(_ line: Substring, open: Substring.Index, cpuDigits: Substring,
                                    afterClose: Substring.Index) -> TextRecordLine? {
        guard let cpu = Int32(cpuDigits) else { return nil }
        var left = line[..<open]
        while left.last == " " { left = left.dropLast() }
        // Optional "(  tgid)" column.
        if left.last == ")", let p = left.lastIndex(of: "(") {
            left = left[..<p]
            while left.last == " " { left = left.dropLast() }
        }
        left = left.drop(while: { $0 == " " })
        guard let dash = left.lastIndex(of: "-"), let pid = Int32(left[left.index(after: dash)...]) else { return nil }
        let task = left[..<dash]
        // After the CPU: optional irq-flags column, then "seconds.micros:".
        var rest = line[afterClose...]
        var timestamp: UInt64?
        for _ in 0..<3 {
            rest = Substring(rest.utf8.drop(while: { $0 == 0x20 }))
            let tokenBytes = rest.utf8.prefix(while: { $0 != 0x20 })
            let token = rest[tokenBytes.startIndex..<tokenBytes.endIndex]
            if tokenBytes.last == 0x3A, let ts = parseTimestamp(token.dropLast()) {
                timestamp = ts
                rest = rest[tokenBytes.endIndex...]
                break
            }
            rest = rest[tokenBytes.endIndex...]
        }
        guard let timestamp else { return nil }
        rest = Substring(rest.utf8.drop(while: { $0 == 0x20 }))
        // tracefs prints stack records without an event name.
        for (prefix, name) in [("<stack trace>", "kernel_stack"), ("<user stack trace>", "user_stack")]
        where rest.hasPrefix(prefix) {
            return TextRecordLine(task: task, pid: pid, cpu: cpu, timestamp: timestamp,
                                  event: Substring(name), payload: rest)
        }
        guard let colon = rest.utf8.firstIndex(of: 0x3A) else { return nil }
        let event = rest[..<colon]
        guard !event.isEmpty, !event.utf8.contains(0x20) else { return nil }
        let payload = Substring(rest[rest.utf8.index(after: colon)...].utf8.drop(while: { $0 == 0x20 }))
        return TextRecordLine(task: task, pid: pid, cpu: cpu, timestamp: timestamp, event: event, payload: payload)
    }

    /// "12.345678" -> nanoseconds, exact (no floating point).
    static func parseTimestamp(_ s: Substring) -> UInt64? {
        var secs: UInt64 = 0, frac: UInt64 = 0, fracDigits = 0, intDigits = 0
        var seenDot = false
        for b in s.utf8 {
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
