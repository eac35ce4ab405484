import CTraceCmd
import CTraceShim
import Foundation

/// Reads trace.dat (versions 6 and 7) through libtracecmd and decodes every
/// field by name from the formats stored in the file. No libtraceevent
/// pointer leaves this file.
public final class TraceDatReader: DMAEventSource {
    public private(set) var facts: TraceFacts
    private let path: String
    private var handle: OpaquePointer?
    private var consumed = false

    /// How long the throw-away child may take to open the file before the
    /// file is judged to hang the library.
    static let probeTimeoutSeconds: UInt32 = 60

    /// libtraceevent parses event formats through static buffers: two opens at
    /// once in one process corrupt each other. Opening (and printk formatting) is serialized.
    static let libraryLock = NSLock()

    public init(path: String) throws {
        self.path = path
        self.facts = TraceFacts(path: path, format: .traceDat)
        try Self.probe(path: path)
        try Self.libraryLock.withLock {
            dmatrace_quiet_libraries()
            handle = try Self.openHandle(path: path)
            readFacts()
        }
    }

    deinit {
        if let handle { tracecmd_close(handle) }
    }

    private static func probe(path: String) throws {
        var signal: Int32 = 0
        // The child inherits the parent's memory as it is at fork(): if another thread were
        // inside libtraceevent's format parser then, the child would start from its half-done
        // static state. Forking under the same lock keeps that from happening.
        var outcome = libraryLock.withLock { dmatrace_probe_trace_dat(path, probeTimeoutSeconds, &signal) }
        // A refusal has been seen once under heavy parallel load in a multi-threaded test process
        // and never reproduced; a damaged file fails every time, so asking twice costs nothing real.
        if outcome != Int32(DMATRACE_PROBE_OK.rawValue) && outcome != Int32(DMATRACE_PROBE_CRASHED.rawValue)
            && outcome != Int32(DMATRACE_PROBE_TIMEOUT.rawValue) {
            outcome = libraryLock.withLock { dmatrace_probe_trace_dat(path, probeTimeoutSeconds, &signal) }
        }
        switch UInt32(outcome) {
        case DMATRACE_PROBE_OK.rawValue:
            return
        case DMATRACE_PROBE_REJECTED.rawValue:
            throw IngestError(path: path, problem: "libtracecmd cannot read this trace.dat (truncated or corrupted header, formats or CPU data)")
        case DMATRACE_PROBE_REJECTED_HEADER.rawValue:
            throw IngestError(path: path, problem: "libtracecmd cannot read this trace.dat's header (truncated or corrupted header, event formats or options)")
        case DMATRACE_PROBE_REJECTED_DATA.rawValue:
            throw IngestError(path: path, problem: "libtracecmd cannot read this trace.dat's CPU data (truncated or corrupted data sections)")
        case DMATRACE_PROBE_CRASHED.rawValue:
            throw IngestError(path: path, problem: "trace.dat is corrupted: libtracecmd/libtraceevent crashed (signal \(signal)) while opening it in an isolated child process")
        case DMATRACE_PROBE_TIMEOUT.rawValue:
            throw IngestError(path: path, problem: "trace.dat could not be opened within \(probeTimeoutSeconds) s (corrupted, or the library hangs on it)")
        default:
            // Without a child we cannot take the risk safely; opening directly is
            // still better than refusing a file that is most likely fine.
            return
        }
    }

    private static func openHandle(path: String) throws -> OpaquePointer {
        guard let h = dmatrace_open_trace_dat(path) else {
            throw IngestError(path: path, problem: "libtracecmd cannot read this trace.dat")
        }
        return h
    }

    private func readFacts() {
        guard let handle, let tep = tracecmd_get_tep(handle) else { return }
        facts.fileVersion = Int(tracecmd_get_in_file_version(handle))
        facts.cpus = Int(tracecmd_cpus(handle))
        if let clock = tracecmd_get_trace_clock(handle) { facts.clock = String(cString: clock) }
        if let uname = tracecmd_get_uname(handle) {
            // Stored as "Linux <host> <release> <version...>" by trace-cmd record.
            let parts = String(cString: uname).split(separator: " ")
            facts.kernelRelease = parts.count >= 3 ? String(parts[2]) : parts.first.map(String.init)
        }
        var names = Set<String>()
        let count = Int(tep_get_events_count(tep))
        if let list = tep_list_events(tep, TEP_EVENT_SORT_ID) {
            for i in 0..<count {
                guard let ev = list[i] else { continue }
                let system = ev.pointee.system.map { String(cString: $0) } ?? ""
                if KnownEvent.dmaSystems.contains(system), let n = ev.pointee.name {
                    names.insert(String(cString: n))
                }
            }
        }
        facts.eventFormats = names.sorted()
        facts.generation = EventGeneration.detect(eventNames: names)
        facts.hasKallsyms = tep_find_function(tep, 0xffff_ffff_8100_0000) != nil
            || tep_find_function(tep, 0xffff_8000_8000_0000) != nil
    }

    /// Asked once, after the replay, only when debug info resolves the findings' stacks.
    public func kallsymsModules() -> [String: [String]]? {
        guard let handle, let tep = tracecmd_get_tep(handle) else { return nil }
        var len = 0
        guard let buf = Self.libraryLock.withLock({ dmatrace_function_list(tep, &len) }) else { return nil }
        defer { free(buf) }
        var out: [String: [String]] = [:]
        let text = UnsafeRawBufferPointer(start: buf, count: len)
        // "ffffffffc050fc20 e1000_alloc_rx_buffers [e1000e]"; the kernel image's lines have no module.
        for line in text.split(separator: UInt8(ascii: "\n")) where line.last == UInt8(ascii: "]") {
            let parts = line.split(separator: UInt8(ascii: " "))
            guard parts.count == 3, parts[2].first == UInt8(ascii: "[") else { continue }
            let name = String(decoding: parts[1], as: UTF8.self)
            let module = StackResolver.normalize(String(decoding: parts[2].dropFirst().dropLast(), as: UTF8.self))
            if out[name]?.contains(module) != true { out[name, default: []].append(module) }
        }
        return out
    }

    /// A decoder bound to this file's event formats, for records that do not come from
    /// the file's own data (the fuzz targets). Valid while this reader lives.
    func makeDecoder() -> RecordDecoder? {
        guard let handle, let tep = tracecmd_get_tep(handle) else { return nil }
        return RecordDecoder(tep: tep)
    }

    public func read(_ handler: (DMAEvent) throws -> Void) throws -> IngestStats {
        if consumed {
            if let handle { tracecmd_close(handle) }
            handle = nil
            try Self.probe(path: path)
            handle = try Self.libraryLock.withLock { try Self.openHandle(path: path) }
        }
        consumed = true
        guard let handle, let tep = tracecmd_get_tep(handle) else {
            throw IngestError(path: path, problem: "libtracecmd returned no event parser for this file")
        }
        var decoder = RecordDecoder(tep: tep)
        var stats = IngestStats()
        var cpu: Int32 = 0
        var lastSeen: [Int32: UInt64] = [:]
        while let record = tracecmd_read_next_data(handle, &cpu) {
            defer { tracecmd_free_record(record) }
            stats.records += 1
            let rec = record.pointee
            lastSeen[rec.cpu] = rec.ts
            stats.noteTimestamp(rec.ts)
            if rec.missed_events != 0 {
                let count: UInt64? = rec.missed_events > 0 ? UInt64(rec.missed_events) : nil
                stats.lostGaps += 1
                if let count { stats.lostEventsCounted += count } else { stats.uncountedGaps += 1 }
                try handler(DMAEvent(timestamp: rec.ts, cpu: Int32(rec.cpu), pid: -1, task: "",
                                     device: nil, kind: .lostEvents(count: count)))
            }
            guard var event = decoder.decode(record, stats: &stats) else { continue }
            if decoder.hasKernelStacks {
                event.stack = takeStack(after: record, cpu: rec.cpu, pid: event.pid,
                                        decoder: &decoder, stats: &stats, lastSeen: &lastSeen)
            }
            stats.dmaEvents += 1
            try handler(event)
        }
        try checkReachedEnd(handle, lastSeen: lastSeen)
        return stats
    }

    /// libtracecmd ends the iteration quietly when a compressed chunk will not
    /// decompress; a partial trace must not pass for a whole one. Each CPU's
    /// last record in the file must be the last one the iteration delivered.
    private func checkReachedEnd(_ handle: OpaquePointer, lastSeen: [Int32: UInt64]) throws {
        for cpu in 0..<tracecmd_cpus(handle) {
            let last = tracecmd_read_cpu_last(handle, cpu)
            defer { if let last { tracecmd_free_record(last) } }
            switch (last?.pointee.ts, lastSeen[cpu]) {
            case (nil, nil):
                continue
            case (nil, .some):
                throw IngestError(path: path, problem: "trace.dat is corrupted: the end of CPU \(cpu)'s data cannot be read")
            case (.some(let end), let seen):
                if end != seen {
                    let got = seen.map { "stopped at \(formatSeconds($0)) s" } ?? "gave no record"
                    throw IngestError(path: path, problem: "trace.dat is corrupted: CPU \(cpu)'s data \(got) but the file has records up to \(formatSeconds(end)) s (a damaged compressed block?)")
                }
            }
        }
    }

    /// With `-T`, trace-cmd puts a kernel_stack record right after each event on
    /// the same CPU for the same task; peeking keeps the stream in time order.
    private func takeStack(after record: UnsafeMutablePointer<tep_record>, cpu: Int32, pid: Int32,
                           decoder: inout RecordDecoder, stats: inout IngestStats,
                           lastSeen: inout [Int32: UInt64]) -> KernelStack? {
        guard let handle, let next = tracecmd_peek_data(handle, cpu),
              decoder.isKernelStack(next), decoder.pid(of: next) == pid else { return nil }
        // A later gap belongs to the next real record, not to the stack we swallow.
        guard next.pointee.missed_events == 0 else { return nil }
        guard let taken = tracecmd_read_data(handle, cpu) else { return nil }
        defer { tracecmd_free_record(taken) }
        lastSeen[cpu] = taken.pointee.ts
        stats.records += 1
        stats.stackRecords += 1
        return decoder.decodeStack(taken)
    }
}
