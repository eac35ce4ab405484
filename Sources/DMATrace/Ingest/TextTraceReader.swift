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

    public func read(_ handler: (DMAEvent) throws -> Void) throws -> IngestStats {
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
        var seenEvents = Set<String>()
        var carry = Data()
        var lineNumber = 0
        func ordered(_ event: DMAEvent) throws { try order.push(event, line: lineNumber, emit: handler) }
        /// Inside an over-long line: its bytes up to the next newline are dropped.
        var skipping = false
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
            var text = String(decoding: bytes, as: UTF8.self)
            if text.hasSuffix("\r") { text.removeLast() }
            try state.feed(Substring(text), lineNumber: lineNumber, seenEvents: &seenEvents, emit: ordered)
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
        let names = seenEvents.union(state.formats)
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

    /// Events not yet emitted, in input order. An entry can still receive a
    /// stack while it is the newest event of its CPU.
    private var queue: [DMAEvent] = []
    private var queueOpen: [Bool] = []
    private var newestIndexOfCPU: [Int32: Int] = [:]
    /// A `<stack trace>` header was seen: frames go to this queue index.
    private var stackTarget: Int?
    private var pendingLost: [Int32: [UInt64?]] = [:]
    private static let window = 256

    init(options: TextTraceReader.Options, perf: Bool = false) {
        self.options = options
        self.perf = perf
    }

    mutating func feed(_ line: Substring, lineNumber: Int, seenEvents: inout Set<String>,
                       emit: (DMAEvent) throws -> Void) throws {
        switch perf ? PerfScriptLineParser.parse(line) : TextLineParser.parse(line) {
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
            guard let target = stackTarget else { return }
            var stack = queue[target].stack ?? KernelStack(frames: [])
            stack.frames.append(frame)
            queue[target].stack = stack
        case .unreadable(let reason):
            noteUnreadable(line, lineNumber: lineNumber, reason: reason)
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
                if let idx = newestIndexOfCPU[r.cpu], queueOpen[idx], queue[idx].pid == r.pid, queue[idx].stack == nil {
                    stackTarget = idx
                }
                return
            }
            try flushLost(cpu: -1, at: r.timestamp, emit: emit)
            try flushLost(cpu: r.cpu, at: r.timestamp, emit: emit)
            let name = String(r.event)
            // perf cannot record trace_marker writes; kernel log lines (`-e printk:console`,
            // `echo TEXT > /dev/kmsg`) stand in for them.
            if r.system == "printk" && name == "console" {
                try queueEvent(DMAEvent(timestamp: r.timestamp, cpu: r.cpu, pid: r.pid, task: String(r.task),
                                        device: nil, kind: .marker(String(r.payload))), framesFollow: false, emit: emit)
                return
            }
            guard var known = KnownEvent.classify(system: r.system.map(String.init), name: name) else {
                if name.hasPrefix("dma_") || name.hasPrefix("swiotlb") || name.hasPrefix("iommu") {
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
                kind = .marker(name == "tracing_mark_write" ? String(r.payload) : Self.markerText(r.payload))
            case .kernelStack:
                return
            default:
                seenEvents.insert(name)
                let payload = TextPayload(r.payload)
                kind = TextEventDecoder.kind(known, payload)
                device = TextEventDecoder.device(for: known, payload)
                if case .iommuMap = known { known = .iommuMap }
            }
            guard let kind else {
                stats.malformedRecords += 1
                noteUnreadable(line, lineNumber: lineNumber, reason: "\(name): fields missing or unreadable")
                return
            }
            stats.dmaEvents += 1
            let event = DMAEvent(timestamp: r.timestamp, cpu: r.cpu, pid: r.pid, task: String(r.task),
                                 device: device, kind: kind)
            try queueEvent(event, framesFollow: r.framesFollow, emit: emit)
        }
    }

    private mutating func queueEvent(_ event: DMAEvent, framesFollow: Bool, emit: (DMAEvent) throws -> Void) throws {
        if let prev = newestIndexOfCPU[event.cpu] { queueOpen[prev] = false }
        queue.append(event)
        queueOpen.append(true)
        newestIndexOfCPU[event.cpu] = queue.count - 1
        if framesFollow { stackTarget = queue.count - 1 }
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
        var n = 0
        while n < queue.count, force || !queueOpen[n] || queue.count - n > Self.window {
            try emit(queue[n])
            n += 1
        }
        guard n > 0 else { return }
        queue.removeFirst(n)
        queueOpen.removeFirst(n)
        for (cpu, idx) in newestIndexOfCPU {
            if idx < n { newestIndexOfCPU[cpu] = nil } else { newestIndexOfCPU[cpu] = idx - n }
        }
        if let t = stackTarget { stackTarget = t >= n ? t - n : nil }
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
