import DequeModule
import Foundation

/// Reads ftrace text: tracefs `trace` (with its header and irq-flags column),
/// `trace_pipe`, and `trace-cmd report` output; and `perf script` output. Streams the
/// file in chunks.
public final class TextTraceReader: DMAEventSource {
    public struct Options: Sendable {
        /// How many unreadable lines to keep, with their line numbers, for --verbose.
        public var keepUnreadable: Int
        /// How far out of time order a line may come and still be put back in place.
        public var reorder: TimeOrderWindow.Bound
        /// A longer line is reported unreadable with its line number and skipped, never
        /// buffered whole (a dma_map_sg line of 100,000 entries is under 4 MiB).
        public var maxLineBytes: Int
        public init(keepUnreadable: Int = 20, reorder: TimeOrderWindow.Bound = .standard, maxLineBytes: Int = 16 << 20) {
            self.keepUnreadable = keepUnreadable
            self.reorder = reorder
            self.maxLineBytes = maxLineBytes
        }
    }

    public private(set) var facts: TraceFacts
    private let path: String
    private let options: Options
    /// Text given in memory (tests, rule examples) instead of a file.
    private let inMemory: Data?
    /// A stream to read instead of the file (perf script's stdout).
    private let stream: FileHandle?

    /// Reads ftrace text held in memory; `name` stands for the file in messages.
    public convenience init(name: String, text: String, options: Options = .init()) throws {
        try self.init(path: name, sniffed: Data(text.utf8.prefix(4096)), options: options, content: Data(text.utf8))
    }

    init(path: String, sniffed: Data, options: Options, content: Data? = nil) throws {
        self.path = path
        self.options = options
        self.inMemory = content
        self.stream = nil
        if Self.looksBinary(sniffed) {
            throw IngestError(path: path, problem: "is binary data, neither a trace.dat nor ftrace text")
        }
        let head = String(decoding: sniffed, as: UTF8.self)
        let format: TraceFacts.Format
        if head.hasPrefix("cpus=") || head.contains("\ncpus=") {
            format = .traceCmdReport
        } else if PerfScriptLineParser.looksLikePerfScript(head) {
            format = .perfScript
        } else {
            format = .tracefs
        }
        facts = TraceFacts(path: path, format: format)
    }

    /// Reads `perf script` text from `stream` (a child's stdout); `path` names the input.
    init(path: String, perfScriptStream stream: FileHandle, format: TraceFacts.Format, options: Options) {
        self.path = path
        self.options = options
        self.inMemory = nil
        self.stream = stream
        facts = TraceFacts(path: path, format: format)
    }

    private var isPerf: Bool { facts.format == .perfScript || facts.format == .perfData }

    /// Text with NUL bytes or mostly non-printable bytes is not a trace.
    static func looksBinary(_ data: Data) -> Bool {
        if data.contains(0) { return true }
        var odd = 0
        for b in data where b < 0x09 || (b > 0x0d && b < 0x20) || b == 0x7f { odd += 1 }
        if odd * 20 > data.count { return true }
        // Text traces are ASCII apart from the odd task name or marker.
        return data.filter({ $0 >= 0x80 }).count * 10 > data.count
    }

    public func read(_ handler: (consuming DMAEvent) throws -> Void) throws -> IngestStats {
        var pending = inMemory
        let ownFile = inMemory == nil && stream == nil ? FileHandle(forReadingAtPath: path) : nil
        if inMemory == nil && stream == nil && ownFile == nil {
            throw IngestError(path: path, problem: "cannot be opened for reading")
        }
        defer { try? ownFile?.close() }
        let file = stream ?? ownFile
        func nextChunk() throws -> Data {
            if let data = pending {
                pending = Data()
                return data
            }
            return try file?.read(upToCount: 1 << 20) ?? Data()
        }
        var state = TextStreamState(options: options, perf: isPerf)
        var order = TimeOrderWindow(bound: options.reorder)
        var carry = Data()
        var lineNumber = 0
        func ordered(_ event: DMAEvent) throws { try order.push(event, line: lineNumber, emit: handler) }
        /// Inside an over-long line: its bytes up to the next newline are dropped.
        var skipping = false
        let perf = isPerf
        var perfTokens: [Range<Int>] = []
        func consume(_ bytes: UnsafeRawBufferPointer) throws {
            if skipping {
                skipping = false
                return
            }
            lineNumber += 1
            if bytes.count > options.maxLineBytes {
                state.noteOverlongLine(String(decoding: bytes.prefix(300), as: UTF8.self), lineNumber: lineNumber,
                                       limit: options.maxLineBytes)
                return
            }
            if perf {
                var raw = TextBytes(bytes)
                if raw.last == 0x0D { raw = raw.dropLast() }
                if let record = PerfScriptLineParser.sampleRecord(raw, tokens: &perfTokens) {
                    try state.feed(raw, perfLine: nil, parsed: .record(record), lineNumber: lineNumber, emit: ordered)
                    return
                }
                // Other perf script lines are tokenized as Strings; the stream state reads their UTF-8.
                var text = String(decoding: bytes, as: UTF8.self)
                if text.hasSuffix("\r") { text.removeLast() }
                let line = Substring(text)
                try text.withUTF8 { try state.feed(TextBytes($0), perfLine: line, lineNumber: lineNumber, emit: ordered) }
                return
            }
            var line = TextBytes(bytes)
            if line.last == 0x0D { line = line.dropLast() }
            try state.feed(line, perfLine: nil, lineNumber: lineNumber, emit: ordered)
        }
        while true {
            let chunk: Data
            do {
                chunk = try nextChunk()
            } catch {
                throw IngestError(path: path, problem: "read failed: \(error.localizedDescription)")
            }
            if chunk.isEmpty { break }
            if lineNumber < 10 && state.stats.records == 0 && chunk.contains(0) {
                throw IngestError(path: path, problem: "is binary data, neither a trace.dat nor ftrace text")
            }
            carry.append(chunk)
            // memchr over the raw bytes: Data's element-wise iteration was the text path's top cost.
            let consumed = try carry.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Int in
                guard let base = raw.baseAddress else { return 0 }
                var start = 0
                while start < raw.count, let hit = memchr(base + start, 0x0a, raw.count - start) {
                    let end = base.distance(to: UnsafeRawPointer(hit))
                    try consume(UnsafeRawBufferPointer(rebasing: raw[start..<end]))
                    start = end + 1
                }
                return start
            }
            carry = consumed == carry.count ? Data() : Data(carry.dropFirst(consumed))
            if carry.count > options.maxLineBytes {
                if !skipping {
                    lineNumber += 1
                    state.noteOverlongLine(String(decoding: carry.prefix(300), as: UTF8.self), lineNumber: lineNumber,
                                           limit: options.maxLineBytes)
                    skipping = true
                }
                carry = Data()
            }
        }
        if !carry.isEmpty { try carry.withUnsafeBytes { try consume($0) } }
        try state.finish(emit: ordered)
        try order.finish(emit: handler)
        state.stats.lateLines = order.late
        if state.stats.records == 0 {
            let what = isPerf ? "perf script sample" : "ftrace event"
            let detail = state.stats.unreadableLines > 0
                ? "no \(what) line could be read (\(state.stats.unreadableLines) unreadable lines)"
                : "contains no \(what) lines"
            throw IngestError(path: path, problem: detail)
        }
        if let cpus = state.cpus { facts.cpus = cpus }
        if let release = state.kernelRelease { facts.kernelRelease = release }
        let names = state.seenEvents.union(state.formats)
        facts.eventFormats = names.sorted()
        facts.generation = EventGeneration.detect(eventNames: names)
        return state.stats
    }
}

/// The line-by-line state of a text pass: stacks attach to the event they
/// follow, lost-event lines to the next record of their CPU.
struct TextStreamState {
    var stats = IngestStats()
    var cpus: Int?
    let options: TextTraceReader.Options
    /// `perf script` lines instead of ftrace's.
    let perf: Bool
    /// From `perf script --header`.
    var kernelRelease: String?
    var formats = Set<String>()
    /// Names of the dma, swiotlb and iommu events that had records.
    private(set) var seenEvents = Set<String>()

    /// Events not yet emitted, in input order, numbered from `queueBase`. An entry can still
    /// receive a stack while it is the newest event of its CPU.
    private var queue = Deque<Queued>()
    private var queueBase = 0
    /// Per CPU, the number of its newest queued event (below `queueBase`: already emitted).
    private var newestOfCPU = CPUTable()
    /// A `<stack trace>` header was seen: frames go to the event with this number.
    private var stackTarget: Int?
    private var pendingLost: [Int32: [UInt64?]] = [:]
    private static let window = 256

    /// What each event name means, found once per name rather than once per line.
    private var names: [EventName] = []
    private var tasks = TextInterner(capacity: 256)
    private var devices = TextInterner(capacity: 64)
    /// Reused for every line: no allocation per line.
    private var payload = TextPayload()

    private struct Queued {
        var event: DMAEvent
        /// Still the newest event of its CPU.
        var open: Bool
        /// Stack frames read for it so far: the stack is set once, when it leaves the queue.
        var frames: [String]?
    }

    private struct EventName {
        let system: [UInt8]?
        let event: [UInt8]
        let name: String
        let known: KnownEvent?
        /// An unmodelled event of the dma, swiotlb or iommu families.
        let dmaFamily: Bool
        let printkConsole: Bool
        /// Already in `seenEvents`.
        var seen: Bool
    }

    init(options: TextTraceReader.Options, perf: Bool = false) {
        self.options = options
        self.perf = perf
    }

    /// The entry and its place in `names` (nil once the table is full).
    private mutating func eventName(_ r: TextRecordLine) -> (EventName, Int?) {
        for (i, entry) in names.enumerated() where r.event.equals(entry.event) {
            switch (entry.system, r.system) {
            case (nil, nil): return (entry, i)
            case (let a?, let b?) where b.equals(a): return (entry, i)
            default: continue
            }
        }
        let name = r.event.string
        let system = r.system?.string
        let entry = EventName(system: r.system?.array, event: r.event.array, name: name,
                              known: KnownEvent.classify(system: system, name: name),
                              dmaFamily: name.hasPrefix("dma_") || name.hasPrefix("swiotlb") || name.hasPrefix("iommu"),
                              printkConsole: system == "printk" && name == "console", seen: false)
        // Bounded: a damaged text could name a new event on every line.
        guard names.count < 64 else { return (entry, nil) }
        names.append(entry)
        return (entry, names.count - 1)
    }

    private func lineText(_ line: TextBytes, _ perfLine: Substring?) -> Substring {
        perfLine ?? line.substring
    }

    /// `parsed`: the line already read (perf script's sample lines).
    mutating func feed(_ line: TextBytes, perfLine: Substring?, parsed: TextLine? = nil, lineNumber: Int,
                       emit: (DMAEvent) throws -> Void) throws {
        switch parsed ?? perfLine.map({ PerfScriptLineParser.parse($0, bytes: line) }) ?? TextLineParser.parse(line) {
        case .header(let n):
            if let n { cpus = n }
        case .bufferEntries(let inBuffer, let written, let n):
            if let n { cpus = n }
            if written > inBuffer, stats.records == 0 {
                // Overwritten before the snapshot: a gap before the first record, on every CPU.
                stats.lostGaps += 1
                stats.lostEventsCounted += written - inBuffer
                pendingLost[-1, default: []].append(written - inBuffer)
            }
        case .lost(let cpu, let count):
            stats.lostGaps += 1
            if let count { stats.lostEventsCounted += count } else { stats.uncountedGaps += 1 }
            pendingLost[cpu, default: []].append(count)
        case .stackFrame(let frame):
            guard let target = stackTarget, target >= queueBase else { return }
            let idx = target - queueBase
            if queue[idx].frames == nil { queue[idx].frames = [frame] } else { queue[idx].frames!.append(frame) }
        case .unreadable(let reason):
            noteUnreadable(lineText(line, perfLine), lineNumber: lineNumber, reason: reason)
        case .kernelRelease(let release):
            kernelRelease = release
        case .eventFormat(let name):
            if KnownEvent.classify(system: nil, name: name) != nil || name.hasPrefix("dma_") { formats.insert(name) }
        case .record(let r):
            stats.records += 1
            stats.noteTimestamp(r.timestamp)
            stackTarget = nil
            if r.payload.hasPrefix("<stack trace") || r.event == "kernel_stack" || r.event == "<stack trace>" {
                stats.stackRecords += 1
                if let seq = newestOfCPU[r.cpu], seq >= queueBase {
                    let idx = seq - queueBase
                    if queue[idx].open, queue[idx].event.pid == r.pid, queue[idx].frames == nil,
                       queue[idx].event.stack == nil { stackTarget = seq }
                }
                return
            }
            if !pendingLost.isEmpty {
                try flushLost(cpu: -1, at: r.timestamp, emit: emit)
                try flushLost(cpu: r.cpu, at: r.timestamp, emit: emit)
            }
            let (entry, entryIndex) = eventName(r)
            let name = entry.name
            // perf cannot record trace_marker writes; kernel log lines (`-e printk:console`,
            // `echo TEXT > /dev/kmsg`) stand in for them.
            if entry.printkConsole {
                try queueEvent(DMAEvent(timestamp: r.timestamp, cpu: r.cpu, pid: r.pid, task: task(r),
                                        device: nil, kind: .marker(r.payload.string)), framesFollow: false, emit: emit)
                return
            }
            guard let known = entry.known else {
                if entry.dmaFamily {
                    stats.unknownEvents[name, default: 0] += 1
                } else {
                    stats.otherRecords += 1
                }
                return
            }
            // "map"/"unmap" are the iommu system's only when the payload says so.
            if case .iommuMap = known, !r.payload.hasPrefix("IOMMU:") { stats.otherRecords += 1; return }
            if case .iommuUnmap = known, !r.payload.hasPrefix("IOMMU:") { stats.otherRecords += 1; return }
            let kind: DMAEventKind?
            var device: String?
            switch known {
            case .print, .bprint:
                kind = .marker(name == "tracing_mark_write" ? r.payload.string : Self.markerText(r.payload.substring))
            case .kernelStack:
                return
            default:
                if !entry.seen {
                    seenEvents.insert(name)
                    if let entryIndex { names[entryIndex].seen = true }
                }
                payload.parse(r.payload)
                kind = TextEventDecoder.kind(known, payload)
                if let bytes = TextEventDecoder.deviceBytes(for: known, payload) { device = devices.string(bytes) }
            }
            guard let kind else {
                stats.malformedRecords += 1
                noteUnreadable(lineText(line, perfLine), lineNumber: lineNumber, reason: "\(name): fields missing or unreadable")
                return
            }
            stats.dmaEvents += 1
            let event = DMAEvent(timestamp: r.timestamp, cpu: r.cpu, pid: r.pid, task: task(r),
                                 device: device, kind: kind)
            try queueEvent(event, framesFollow: r.framesFollow, emit: emit)
        }
    }

    private mutating func task(_ r: TextRecordLine) -> String {
        tasks.string(r.task, key: Int(UInt32(bitPattern: r.pid)))
    }

    private mutating func queueEvent(_ event: DMAEvent, framesFollow: Bool, emit: (DMAEvent) throws -> Void) throws {
        if let prev = newestOfCPU[event.cpu], prev >= queueBase { queue[prev - queueBase].open = false }
        queue.append(Queued(event: event, open: true, frames: nil))
        let seq = queueBase + queue.count - 1
        newestOfCPU[event.cpu] = seq
        if framesFollow { stackTarget = seq }
        try drain(force: false, emit: emit)
    }

    /// "tracing_mark_write: text" (print) or "func: text" (bprint).
    static func markerText(_ payload: Substring) -> String {
        if let r = payload.range(of: ": ") {
            let head = payload[..<r.lowerBound]
            if !head.contains(" ") { return String(payload[r.upperBound...]) }
        }
        return String(payload)
    }

    mutating func noteOverlongLine(_ start: String, lineNumber: Int, limit: Int) {
        let size = limit >= 1 << 20 ? "\(limit >> 20) MiB" : "\(limit) bytes"
        noteUnreadable(Substring(start), lineNumber: lineNumber, reason: "longer than \(size): skipped, not read")
    }

    private mutating func noteUnreadable(_ line: Substring, lineNumber: Int, reason: String) {
        stats.unreadableLines += 1
        if stats.unreadableSamples.count < options.keepUnreadable {
            stats.unreadableSamples.append(.init(line: lineNumber, text: String(line.prefix(300)), reason: reason))
        }
    }

    private mutating func flushLost(cpu: Int32, at ts: UInt64, emit: (DMAEvent) throws -> Void) throws {
        guard let counts = pendingLost.removeValue(forKey: cpu) else { return }
        // Everything queued before the gap goes out first, to keep time order.
        try drain(force: true, emit: emit)
        for count in counts {
            try emit(DMAEvent(timestamp: ts, cpu: cpu, pid: -1, task: "", device: nil, kind: .lostEvents(count: count)))
        }
    }

    private mutating func drain(force: Bool, emit: (DMAEvent) throws -> Void) throws {
        while let first = queue.first, force || !first.open || queue.count > Self.window {
            queue.removeFirst()
            queueBase += 1
            var event = first.event
            if let frames = first.frames { event.stack = KernelStack(frames: frames) }
            try emit(event)
        }
        if let t = stackTarget, t < queueBase { stackTarget = nil }
    }

    mutating func finish(emit: (DMAEvent) throws -> Void) throws {
        try drain(force: true, emit: emit)
        let last = stats.lastTimestamp ?? 0
        for (cpu, counts) in pendingLost.sorted(by: { $0.key < $1.key }) {
            for count in counts {
                try emit(DMAEvent(timestamp: last, cpu: cpu, pid: -1, task: "", device: nil, kind: .lostEvents(count: count)))
            }
        }
        pendingLost = [:]
    }
}

/// Per-CPU numbers: an array for the CPU numbers real machines have, a dictionary for the rest.
struct CPUTable {
    private var small: [Int] = []
    private var large: [Int32: Int] = [:]
    private static let smallLimit: Int32 = 4096

    subscript(cpu: Int32) -> Int? {
        get {
            if cpu >= 0 && cpu < Self.smallLimit {
                let i = Int(cpu)
                return i < small.count && small[i] >= 0 ? small[i] : nil
            }
            return large[cpu]
        }
        set {
            if cpu >= 0 && cpu < Self.smallLimit {
                let i = Int(cpu)
                if i >= small.count { small += [Int](repeating: -1, count: i + 1 - small.count) }
                small[i] = newValue ?? -1
            } else {
                large[cpu] = newValue
            }
        }
    }
}
