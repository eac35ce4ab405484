/// Tokenizes one line of `perf script` output (perf 6.1's builtin-script.c layout):
///
///     [comm] [pid/tid | tid | pid] [[cpu]] seconds.fraction: [period] system:event: payload
///     \t    ffffffffc0a1b2c3 nvme_queue_rq+0x1d3 ([nvme])          <- callchain frame (-g)
///     [comm tid [cpu] seconds:] PERF_RECORD_LOST lost N             <- --show-lost-events
///     LOST N events!
///
/// Every column before the timestamp is optional (`-F`), so the anchor is the timestamp
/// token, and the event is the first `system:name:` token after it. Results are the same
/// `TextLine` values the ftrace text parser gives, so one stream state serves both.
enum PerfScriptLineParser {
    /// `bytes` are `line`'s UTF-8: the record's fields are views of them.
    static func parse(_ line: Substring, bytes: TextBytes) -> TextLine {
        let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
        if trimmed.first == "#" { return headerLine(trimmed) }
        if trimmed.isEmpty { return .header(cpus: nil) }
        if let frame = callchainFrame(line, trimmed) { return frame }
        if trimmed.hasPrefix("LOST "), trimmed.hasSuffix(" events!") {
            let n = UInt64(trimmed.dropFirst(5).prefix(while: { $0 != " " }))
            return .lost(cpu: -1, count: n)
        }
        let tokens = spaceSeparated(trimmed)
        if let i = tokens.firstIndex(where: { $0.hasPrefix("PERF_RECORD_") }) {
            return sideRecord(tokens, at: i)
        }
        guard let t = tokens.firstIndex(where: { $0.last == ":" && TextLineParser.parseTimestamp($0.dropLast()) != nil }),
              let timestamp = TextLineParser.parseTimestamp(tokens[t].dropLast()) else {
            return .unreadable("not a perf script sample line (no seconds.fraction: timestamp)")
        }
        // The event name follows the time, or a period column (`-F +period`) after it.
        var e = t + 1
        if e < tokens.count, tokens[e].allSatisfy(\.isNumber) { e += 1 }
        guard e < tokens.count else { return .unreadable("no event name after the timestamp") }
        guard isTracepointName(tokens[e]) else {
            // A sample of a non-tracepoint event (`cycles:`, ...): not ours, and not damage.
            if tokens[e].last == ":" { return .header(cpus: nil) }
            return .unreadable("no system:event: name after the timestamp")
        }
        let name = tokens[e].dropLast()
        let colon = name.firstIndex(of: ":")!
        var head = Array(tokens[..<t])
        var cpu: Int32 = 0
        if let last = head.last, last.first == "[", last.last == "]", let n = Int32(last.dropFirst().dropLast()) {
            cpu = n
            head.removeLast()
        }
        var pid: Int32 = -1
        if let last = head.last, let ids = threadIDs(last) {
            pid = ids
            head.removeLast()
        }
        func span(_ s: Substring) -> TextBytes {
            let start = line.utf8.distance(from: line.startIndex, to: s.startIndex)
            return bytes.slice(start, start + s.utf8.count)
        }
        let task: TextBytes
        if let first = head.first, let lastTok = head.last {
            task = span(trimmed[first.startIndex..<lastTok.endIndex])
        } else {
            task = .empty
        }
        let payloadStart = tokens[e].endIndex
        var payload = Substring(trimmed[payloadStart...].utf8.drop(while: { $0 == 0x20 }))
        payload = withoutInlineIP(payload)
        var record = TextRecordLine(task: task, pid: pid, cpu: cpu, timestamp: timestamp,
                                    event: span(name[name.index(after: colon)...]), payload: span(payload))
        record.system = span(name[..<colon])
        record.framesFollow = true
        return .record(record)
    }

    /// The `perf script --header` lines the facts need; every other `#` line is a comment.
    private static func headerLine(_ s: Substring) -> TextLine {
        let body = s.dropFirst().drop(while: { $0 == " " })
        guard let colon = body.firstIndex(of: ":") else { return .header(cpus: nil) }
        let key = body[..<colon].trimmingCharacters(in: .whitespaces)
        let value = body[body.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        switch key {
        case "os release" where !value.isEmpty: return .kernelRelease(value)
        case "nrcpus avail": return .header(cpus: Int(value))
        case "event":
            // "name = dma:dma_map_page, , id = { 12, 13 }, ..."
            guard value.hasPrefix("name = ") else { return .header(cpus: nil) }
            let name = value.dropFirst(7).prefix(while: { $0 != "," && $0 != " " })
            guard let c = name.firstIndex(of: ":") else { return .header(cpus: nil) }
            return .eventFormat(String(name[name.index(after: c)...]))
        default: return .header(cpus: nil)
        }
    }

    /// `sys:name:` with both parts made of identifier characters.
    static func isTracepointName(_ token: Substring) -> Bool {
        guard token.count >= 4, token.last == ":" else { return false }
        let body = token.dropLast()
        guard let colon = body.firstIndex(of: ":"), colon != body.startIndex, body.index(after: colon) != body.endIndex else { return false }
        return body.utf8.allSatisfy { b in
            b == 0x3A || b == 0x5F || b == 0x2D || b == 0x2E || (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A)
        } && body[body.index(after: colon)...].firstIndex(of: ":") == nil
    }

    /// `pid/tid`, or a bare number (tid by default, pid with `-F pid`): the thread's id.
    private static func threadIDs(_ token: Substring) -> Int32? {
        if let slash = token.firstIndex(of: "/") {
            guard Int32(token[..<slash]) != nil else { return nil }
            return Int32(token[token.index(after: slash)...])
        }
        return Int32(token)
    }

    private static func spaceSeparated(_ s: Substring) -> [Substring] {
        s.split(separator: " ", omittingEmptySubsequences: true)
    }

    /// `-F ip,sym` on a recording without callchains prints the sample's ip on the event line,
    /// after the payload: ` ffffffff8a1b2c3d __traceiter_dma_map_page+0x5d ([kernel.kallsyms])`.
    /// For a tracepoint that ip is inside the tracing code, so it is dropped, not kept as a stack.
    static func withoutInlineIP(_ payload: Substring) -> Substring {
        guard payload.last == ")", let open = payload.range(of: " (", options: .backwards) else { return payload }
        var before = payload[..<open.lowerBound]
        guard let symSpace = before.lastIndex(of: " ") else { return payload }
        before = before[..<symSpace]
        let addrStart = before.lastIndex(of: " ").map { before.index(after: $0) } ?? before.startIndex
        let addr = before[addrStart...]
        guard addr.count >= 8, UInt64(addr, radix: 16) != nil else { return payload }
        // One space separates them; more belong to the payload (a log line may end in one).
        var kept = before[..<addrStart]
        if kept.last == " " { kept = kept.dropLast() }
        return kept
    }

    /// An indented `address symbol+0xoff (dso)` line of a callchain. Only kernel frames are
    /// kept: with `-g` perf also walks the user stack, and those addresses are not the kernel's.
    private static func callchainFrame(_ line: Substring, _ trimmed: Substring) -> TextLine? {
        // perf indents frames with a tab; sample lines start with spaces (%16s comm, %7d tid).
        guard line.first == "\t" else { return nil }
        let addrText = trimmed.prefix(while: { $0.isHexDigit })
        guard !addrText.isEmpty, addrText.endIndex < trimmed.endIndex, trimmed[addrText.endIndex] == " ",
              let addr = UInt64(addrText, radix: 16) else { return nil }
        // x86-64 and arm64 kernels live in the upper half of the address space.
        guard addr >= 0x8000_0000_0000_0000 else { return .header(cpus: nil) }
        var rest = trimmed[addrText.endIndex...].drop(while: { $0 == " " })
        var dso: Substring = ""
        if rest.last == ")", let open = rest.range(of: " (", options: .backwards) {
            dso = rest[open.upperBound..<rest.index(before: rest.endIndex)]
            rest = rest[..<open.lowerBound]
        } else if rest.hasPrefix("("), rest.last == ")" {
            dso = rest.dropFirst().dropLast()
            rest = ""
        }
        var symbol = String(rest)
        if symbol.isEmpty || symbol.hasPrefix("[unknown]") { symbol = "0x" + String(addr, radix: 16) }
        if let module = moduleName(dso) { symbol += " [\(module)]" }
        return .stackFrame(symbol)
    }

    /// `[nvme]`, `/lib/modules/6.12.1/kernel/drivers/nvme/host/nvme.ko.xz` -> `nvme`;
    /// the core kernel (`[kernel.kallsyms]`, `vmlinux`) and unknown maps have none.
    static func moduleName(_ dso: Substring) -> String? {
        if dso.hasPrefix("[") && dso.hasSuffix("]") {
            let inner = dso.dropFirst().dropLast()
            if inner.hasPrefix("kernel.kallsyms") || inner == "unknown" || inner.hasPrefix("guest.kernel") || inner.isEmpty { return nil }
            return String(inner)
        }
        let base = dso.split(separator: "/").last ?? dso
        guard let ko = base.range(of: ".ko") else { return nil }
        let name = base[..<ko.lowerBound]
        return name.isEmpty ? nil : String(name).replacingOccurrences(of: "-", with: "_")
    }

    /// PERF_RECORD_LOST (lost events), PERF_RECORD_LOST_SAMPLES, PERF_RECORD_THROTTLE: a gap
    /// on the line's CPU (on every CPU when it has none). Other side records are not events.
    private static func sideRecord(_ tokens: [Substring], at i: Int) -> TextLine {
        let kind = tokens[i]
        var cpu: Int32 = -1
        for t in tokens[..<i] where t.first == "[" && t.last == "]" {
            if let n = Int32(t.dropFirst().dropLast()) { cpu = n }
        }
        var count: UInt64?
        if let l = tokens[(i + 1)...].firstIndex(of: "lost"), l + 1 < tokens.count { count = UInt64(tokens[l + 1]) }
        switch kind {
        case "PERF_RECORD_LOST", "PERF_RECORD_LOST_SAMPLES":
            return .lost(cpu: cpu, count: count)
        case "PERF_RECORD_THROTTLE":
            // Samples stop until the matching UNTHROTTLE: an unknown number lost on that CPU.
            return .lost(cpu: cpu, count: nil)
        default:
            return .header(cpus: nil)
        }
    }

    /// Whether the sniffed head of a file is `perf script` output: a sample line whose
    /// event column is `system:name:` right after a timestamp, and no ftrace `-pid [cpu]` layout.
    static func looksLikePerfScript(_ head: String) -> Bool {
        // `perf script --header` starts with the file's header, longer than the sniffed head.
        if head.hasPrefix("# ========\n# captured on") || head.contains("\n# perf version : ") { return true }
        for line in head.split(separator: "\n").prefix(40) {
            if isSampleLine(line) { return true }
        }
        return false
    }

    private static func isSampleLine(_ line: Substring) -> Bool {
        var text = String(line)
        let copy = Substring(text)
        return text.withUTF8 { buffer in
            if case .record = parse(copy, bytes: TextBytes(buffer)) { return true }
            return false
        }
    }

    /// A sample line read straight from its bytes, as `parse` reads it, for the lines that make
    /// up nearly all of a recording: ASCII, not a header, frame, lost or side-record line. Any
    /// other line gives nil and goes through `parse`; so does one this path is unsure of.
    static func sampleRecord(_ line: TextBytes, tokens: inout [Range<Int>]) -> TextRecordLine? {
        guard let first = line.first, first != 0x09 else { return nil }
        var start = 0
        while start < line.count, line[start] == 0x20 || line[start] == 0x09 { start += 1 }
        guard start < line.count, line[start] != 0x23 else { return nil }
        // Tokens split at spaces only, as `parse` splits them; a tab stays inside its token.
        tokens.removeAll(keepingCapacity: true)
        var i = start
        while i < line.count {
            let b = line[i]
            if b >= 0x80 { return nil }
            if b == 0x20 { i += 1; continue }
            let tokenStart = i
            while i < line.count, line[i] != 0x20 {
                if line[i] >= 0x80 { return nil }
                i += 1
            }
            tokens.append(tokenStart..<i)
        }
        func token(_ k: Int) -> TextBytes { line.slice(tokens[k].lowerBound, tokens[k].upperBound) }
        if line.slice(start, line.count).hasPrefix("LOST ") { return nil }
        var t = -1
        for k in tokens.indices {
            let tok = token(k)
            if tok.hasPrefix("PERF_RECORD_") { return nil }
            if t < 0, tok.last == 0x3A, TextLineParser.parseTimestamp(tok.dropLast()) != nil { t = k }
        }
        guard t >= 0, let timestamp = TextLineParser.parseTimestamp(token(t).dropLast()) else { return nil }
        var e = t + 1
        if e < tokens.count, token(e).isDigits { e += 1 }
        guard e < tokens.count, isTracepointName(token(e)) else { return nil }
        let name = token(e).dropLast()
        guard let colon = name.firstIndex(of: 0x3A) else { return nil }
        var headEnd = t
        var cpu: Int32 = 0
        if headEnd > 0 {
            let last = token(headEnd - 1)
            if last.first == 0x5B, last.last == 0x5D, let n = last.dropFirst().dropLast().integer(Int32.self) {
                cpu = n
                headEnd -= 1
            }
        }
        var pid: Int32 = -1
        if headEnd > 0, let ids = threadIDs(token(headEnd - 1)) {
            pid = ids
            headEnd -= 1
        }
        let task = headEnd > 0 ? line.slice(tokens[0].lowerBound, tokens[headEnd - 1].upperBound) : .empty
        var payload = line.slice(tokens[e].upperBound, line.count).droppingLeading(0x20)
        if payload.last == 0x29 {
            // ASCII: the kept prefix is as many bytes as characters.
            payload = payload.prefix(withoutInlineIP(payload.substring).utf8.count)
        }
        var record = TextRecordLine(task: task, pid: pid, cpu: cpu, timestamp: timestamp,
                                    event: name.slice(colon + 1, name.count), payload: payload)
        record.system = name.slice(0, colon)
        record.framesFollow = true
        return record
    }

    private static func isTracepointName(_ token: TextBytes) -> Bool {
        guard token.count >= 4, token.last == 0x3A else { return false }
        let body = token.dropLast()
        guard let colon = body.firstIndex(of: 0x3A), colon != 0, colon + 1 != body.count else { return false }
        for k in 0..<body.count {
            let b = body[k]
            let letter = b | 0x20 >= 0x61 && b | 0x20 <= 0x7A
            guard b == 0x3A || b == 0x5F || b == 0x2D || b == 0x2E || (b >= 0x30 && b <= 0x39) || letter else { return false }
        }
        return body.firstIndex(of: 0x3A, from: colon + 1) == nil
    }

    private static func threadIDs(_ token: TextBytes) -> Int32? {
        if let slash = token.firstIndex(of: 0x2F) {
            guard token.slice(0, slash).integer(Int32.self) != nil else { return nil }
            return token.slice(slash + 1, token.count).integer(Int32.self)
        }
        return token.integer(Int32.self)
    }
}
