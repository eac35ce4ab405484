import CTraceCmd
import Foundation

/// A live capture as an event source: `Analyzer.analyze(source:)` replays it through the
/// same model and rules as a recorded trace. `read` runs the whole capture; events reach the
/// handler in time order as the merge releases them, while tracing goes on.
public final class LiveEventSource: DMAEventSource {
    public let capture: LiveCapture
    public private(set) var facts: TraceFacts
    public private(set) var outcome: LiveCapture.Outcome?
    /// Events that came later than the reorder window allowed (delivered anyway, out of order).
    public private(set) var lateEvents: UInt64 = 0
    /// The first of them, in words.
    public private(set) var firstLate: String?
    /// How many times kallsyms was read to name stack frames (at the start, after a module
    /// was loaded or unloaded, at the end).
    public private(set) var symbolTableLoads = 0
    /// Also gets every raw page (record --analyze keeps the file while watching).
    public var tee: LivePageSink?

    /// `capture` must be prepared (`LiveCapture.prepare`).
    public init(capture: LiveCapture) {
        self.capture = capture
        facts = TraceFacts(path: "\(capture.mount.path)/instances/\(capture.options.instance.name)", format: .live)
        facts.kernelRelease = capture.mount.kernelRelease
        let names = Set(capture.inventory.events.values.joined())
        facts.eventFormats = names.sorted()
        facts.generation = EventGeneration.detect(eventNames: names)
        facts.clock = capture.options.instance.clock ?? LiveInstance.selectedClock(capture.mount.read("trace_clock"))
    }

    public func read(_ handler: (consuming DMAEvent) throws -> Void) throws -> IngestStats {
        let capture = self.capture
        let mount = capture.mount!
        var systems = capture.inventory.present + ["ftrace"]
        let tep: OpaquePointer? = systems.withCStrings { tracefs_local_events_system(mount.path, $0) }
        guard let tep else { throw LiveError("libtracefs cannot read the event formats under \(mount.path)/events") }
        defer { tep_free(tep) }
        systems.removeAll()
        // libtracefs parsed the /proc/kallsyms of the start into the formats' handle (even for
        // `--tracefs DIR`): a resolver that knows nothing hides it, so the record decoder gives
        // frames as addresses and they are named when their event is handed on (LiveSymbols).
        _ = tep_set_function_resolver(tep, { _, _, _ in nil }, nil)
        let symbols = LiveSymbols(kallsyms: capture.kallsyms(), modules: capture.modules())
        facts.hasKallsyms = !symbols.isEmpty
        var stacksSeen: UInt64 = 0
        let header = { (name: String) in String(decoding: LiveCapture.readWhole(mount.path + "/events/" + name), as: UTF8.self) }
        let decoder = try LiveDecoder(tep: tep, headerPage: header("header_page"), headerEvent: header("header_event"))
        var merger = LiveMerger()
        merger.cpus = capture.cpuNumbers
        var failure: Error?
        // The handler is only called from this thread: the capture runs here and the sink is its callback.
        try withoutActuallyEscaping(handler) { handler in
            let named: (DMAEvent) throws -> Void = { event in
                guard let stack = event.stack else { return try handler(event) }
                var e = event
                e.stack = symbols.symbolize(stack)
                try handler(e)
            }
            let sink = DecodingSink(decoder: decoder, tee: tee) { event in merger.add(event) } release: { now, unread in
                // Drained stacks may be of a module loaded since the table was read.
                if decoder.stats.stackRecords > stacksSeen {
                    stacksSeen = decoder.stats.stackRecords
                    let modules = capture.modules()
                    if !symbols.isCurrent(modules: modules) { symbols.load(kallsyms: capture.kallsyms(), modules: modules) }
                }
                do { try merger.release(upTo: now, unread: unread, named) } catch { failure = error; return false }
                return true
            }
            let result = try capture.run(sink: sink)
            outcome = result
            facts.clock = LiveInstance.selectedClock(result.metadata.traceClock) ?? facts.clock
            if let problem = sink.failure ?? failure { throw problem }
            // What is left is named with the capture's final kallsyms, the one record stores.
            if decoder.stats.stackRecords > 0 {
                symbols.load(kallsyms: result.metadata.kallsyms, modules: capture.modules())
                facts.hasKallsyms = !symbols.isEmpty
            }
            symbolTableLoads = symbols.loads
            decoder.flushAll { merger.add($0) }
            for (cpu, text) in result.stats {
                let s = RingBufferStats(parsing: text)
                decoder.noteCounterLoss(cpu: cpu, counted: s.overrun + s.droppedEvents) { merger.add($0) }
            }
            try merger.release(upTo: nil, named)
        }
        facts.cpus = outcome?.metadata.cpuStats.count
        lateEvents = merger.late
        firstLate = merger.firstLate.map { late in
            "the first on CPU \(late.cpu) at \(formatSeconds(late.timestamp)) s, after \(formatSeconds(late.released)) s had been replayed"
                + (late.clock.map { ", when the ring buffer's clock read \(formatSeconds($0)) s" } ?? "")
        }
        return decoder.stats
    }
}

private final class DecodingSink: LivePageSink {
    let decoder: LiveDecoder
    let tee: LivePageSink?
    let add: (DMAEvent) -> Void
    let release: (UInt64?, Set<Int>) -> Bool
    var failure: Error?
    var wantsClock: Bool { true }

    init(decoder: LiveDecoder, tee: LivePageSink?, add: @escaping (DMAEvent) -> Void, release: @escaping (UInt64?, Set<Int>) -> Bool) {
        self.decoder = decoder
        self.tee = tee
        self.add = add
        self.release = release
    }

    func begin(subBufferSize: Int) throws { try tee?.begin(subBufferSize: subBufferSize) }

    func take(page: [UInt8], cpu: Int) -> Bool {
        if let tee, !tee.take(page: page, cpu: cpu) { return false }
        do { try decoder.decode(page: page, cpu: cpu, emit: add) } catch { failure = error; return false }
        return true
    }

    func roundEnded(now: UInt64?, unread: Set<Int>) -> Bool {
        // Without the ring buffer's clock, nothing is known complete until the end.
        guard let now else { return true }
        return release(now, unread)
    }
}

extension Array where Element == String {
    /// A NULL-terminated `const char **` for the duration of `body`.
    func withCStrings<R>(_ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>) throws -> R) rethrows -> R {
        let copies = map { strdup($0) }
        defer { copies.forEach { free($0) } }
        var pointers: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) } + [nil]
        return try pointers.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    }
}
