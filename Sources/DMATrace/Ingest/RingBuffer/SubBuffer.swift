/// The layout of one ring-buffer sub-buffer (a "page"), as the kernel states it
/// in events/header_page and events/header_event. trace.dat stores both texts;
/// tracefs serves them live. One decoder reads sub-buffers from either.
struct SubBufferFormat: Sendable, Equatable {
    /// Bytes before the first event: the page timestamp and the commit word.
    let dataOffset: Int
    /// Size of the commit word (the kernel's `long`).
    let commitSize: Int
    /// The file (or machine) that wrote the pages is big-endian.
    let bigEndian: Bool
    /// Its byte order differs from ours.
    let swap: Bool

    /// header_page as every kernel since 2.6.31 writes it, with `long` of `commitSize` bytes:
    /// `u64 timestamp` at 0, `local_t commit` at 8, `char data` right after.
    init(commitSize: Int, bigEndian: Bool) {
        self.commitSize = commitSize
        self.dataOffset = 8 + commitSize
        self.bigEndian = bigEndian
        self.swap = bigEndian != (1.bigEndian == 1)
    }

    /// Checks the kernel's own description of the page and event headers against the
    /// layout this decoder reads (include/linux/ring_buffer.h, kernel/trace/ring_buffer.c
    /// ring_buffer_print_page_header / ring_buffer_print_entry_header). Returns why not, or nil.
    static func mismatch(headerPage: String, headerEvent: String, commitSize: Int) -> String? {
        let fields = Self.fields(headerPage)
        guard let ts = fields["timestamp"], ts.offset == 0, ts.size == 8 else {
            return "header_page has no 8-byte timestamp at offset 0"
        }
        guard let commit = fields["commit"], commit.offset == 8, commit.size == commitSize else {
            return "header_page's commit field is not a \(commitSize)-byte word at offset 8"
        }
        guard let data = fields["data"], data.offset == 8 + commitSize else {
            return "header_page's data does not follow the commit word"
        }
        let words = headerEvent.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
        func value(after name: String) -> String? {
            guard let i = words.firstIndex(where: { $0 == name }), i + 2 < words.count else { return nil }
            return String(words[i + 2])
        }
        // "type_len : 5 bits", "time_delta : 27 bits", "padding : type == 29", ...
        guard value(after: "type_len") == "5", value(after: "time_delta") == "27" else {
            return "header_event does not describe a 5-bit type_len and a 27-bit time_delta"
        }
        func type(of name: String) -> String? {
            guard let i = words.firstIndex(where: { $0 == name }), i + 4 < words.count,
                  words[i + 2] == "type", words[i + 3] == "==" else { return nil }
            return String(words[i + 4])
        }
        guard type(of: "padding") == "29", type(of: "time_extend") == "30" else {
            return "header_event's padding and time_extend types are not 29 and 30"
        }
        // Kernels before 5.10 have no absolute time stamps; "time_stamp : type == 31" since.
        if let stamp = type(of: "time_stamp"), stamp != "31" {
            return "header_event's time_stamp type is not 31"
        }
        return nil
    }

    private static func fields(_ text: String) -> [String: (offset: Int, size: Int)] {
        var out: [String: (offset: Int, size: Int)] = [:]
        for line in text.split(separator: "\n") {
            // "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;"
            let parts = line.split(separator: ";")
            guard parts.count >= 3, let decl = parts.first, decl.contains("field:") else { continue }
            let name = decl.split(separator: " ").last.map { String($0.split(separator: "[").first ?? $0) } ?? ""
            func number(_ key: String) -> Int? {
                parts.lazy.compactMap { p -> Int? in
                    let kv = p.split(separator: ":")
                    guard kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces) == key else { return nil }
                    return Int(kv[1].trimmingCharacters(in: .whitespaces))
                }.first
            }
            if let o = number("offset"), let s = number("size") { out[name] = (o, s) }
        }
        return out
    }
}

/// What is wrong with a sub-buffer, in words for the user.
struct SubBufferError: Error, CustomStringConvertible {
    let offset: Int
    let problem: String
    var description: String { "\(problem) at byte \(offset) of the page" }
}

/// One event record of a sub-buffer: its payload, in place.
struct RingRecord {
    var timestamp: UInt64
    /// The payload (common fields first), inside the sub-buffer's memory.
    var data: UnsafeRawPointer
    var size: Int
    /// Events the kernel dropped before this one: 0, a count, or -1 when it had no room
    /// to say. Only the first event of a sub-buffer carries it (libtraceevent's kbuffer).
    var missedEvents: Int64
}

/// Walks the events of one sub-buffer, in order, with the same rules as libtraceevent's
/// kbuffer (src/kbuffer-parse.c), so records and timestamps are identical, but checks
/// every header and length against the sub-buffer's bytes first.
struct SubBufferCursor {
    private let page: UnsafeRawBufferPointer
    private let format: SubBufferFormat
    private let capacity: Int
    /// Bytes of events, from the commit word.
    let committed: Int
    let lostEvents: Int64
    private var timestamp: UInt64
    private var next = 0

    static let commitMask: UInt64 = (1 << 27) - 1
    static let missedEventsFlag: UInt64 = 1 << 31
    static let missedStoredFlag: UInt64 = 1 << 30
    /// Absolute time stamps carry 59 bits; the top 5 come from the running time.
    static let absoluteMSB: UInt64 = 0xf8 << 56

    init(page: UnsafeRawBufferPointer, format: SubBufferFormat) throws(SubBufferError) {
        self.page = page
        self.format = format
        let r = ByteReader(bytes: page, swap: format.swap)
        guard let ts = r.u64(0), let commit = r.long(8, size: format.commitSize) else {
            throw SubBufferError(offset: 0, problem: "page of \(page.count) bytes is shorter than its header")
        }
        capacity = page.count - format.dataOffset
        timestamp = ts
        committed = Int(commit & Self.commitMask)
        guard committed <= capacity else {
            throw SubBufferError(offset: 8, problem: "commit size \(committed) is larger than the page's \(capacity) bytes of data")
        }
        if commit & Self.missedEventsFlag == 0 {
            lostEvents = 0
        } else if commit & Self.missedStoredFlag != 0 {
            // The kernel stores the count right after the last event when there is room.
            guard let n = r.long(format.dataOffset + committed, size: format.commitSize) else {
                throw SubBufferError(offset: format.dataOffset + committed, problem: "lost-event count lies beyond the page")
            }
            lostEvents = Int64(Int32(truncatingIfNeeded: n))
        } else {
            lostEvents = -1
        }
    }

    @inline(__always)
    private func word(_ at: Int) -> UInt32 {
        let v = page.loadUnaligned(fromByteOffset: format.dataOffset + at, as: UInt32.self)
        return format.swap ? v.byteSwapped : v
    }

    /// The next event record, nil at the end of the committed data.
    @inline(__always)
    mutating func nextRecord() throws(SubBufferError) -> RingRecord? {
        while true {
            let current = next
            if current >= committed { return nil }
            guard current + 4 <= capacity else {
                throw SubBufferError(offset: format.dataOffset + current, problem: "event header runs past the page")
            }
            let header = word(current)
            let typeLen: UInt32
            let delta: UInt32
            if format.bigEndian {
                typeLen = header >> 27
                delta = header & ((1 << 27) - 1)
            } else {
                typeLen = header & 0x1f
                delta = header >> 5
            }
            let body = current + 4
            switch typeLen {
            case 29:
                // Padding: the end of the page, or a discarded event whose delta still counts.
                timestamp &+= UInt64(delta)
                guard body + 4 <= capacity else { return nil }
                next = body + Int(word(body))
            case 30, 31:
                guard body + 4 <= capacity else {
                    throw SubBufferError(offset: format.dataOffset + current, problem: "time extend runs past the page")
                }
                let extended = (UInt64(word(body)) << 27) &+ UInt64(delta)
                if typeLen == 31 {
                    timestamp = (timestamp & Self.absoluteMSB) | extended
                } else {
                    timestamp &+= extended
                }
                next = body + 4
            case 0:
                guard body + 4 <= capacity else {
                    throw SubBufferError(offset: format.dataOffset + current, problem: "event length runs past the page")
                }
                let stated = Int(word(body))
                guard stated >= 4 else {
                    throw SubBufferError(offset: format.dataOffset + current, problem: "event length \(stated) is impossible")
                }
                let length = (stated - 4 + 3) & ~3
                let start = body + 4
                guard length <= capacity - start else {
                    throw SubBufferError(offset: format.dataOffset + current, problem: "event of \(length) bytes runs past the page")
                }
                timestamp &+= UInt64(delta)
                next = start + length
                return record(at: start, length: length, first: current == 0)
            default:
                let length = Int(typeLen) * 4
                guard length <= capacity - body else {
                    throw SubBufferError(offset: format.dataOffset + current, problem: "event of \(length) bytes runs past the page")
                }
                timestamp &+= UInt64(delta)
                next = body + length
                return record(at: body, length: length, first: current == 0)
            }
        }
    }

    @inline(__always)
    private func record(at start: Int, length: Int, first: Bool) -> RingRecord {
        RingRecord(timestamp: timestamp, data: page.baseAddress! + format.dataOffset + start, size: length,
                   missedEvents: first ? lostEvents : 0)
    }
}
