import CTraceCmd
import CTraceShim
import Foundation

/// Reads trace.dat (versions 6 and 7). The file's structure and ring-buffer pages are read
/// here (`TraceDatLayout`, `CPUStream`, `SubBufferCursor`): mapped in place, decompressed
/// per CPU in parallel, merged by time. libtraceevent keeps the event formats: a `tep`
/// handle built from the file's sections (`dmatrace_tep_build`, first in a forked child),
/// kallsyms parsed only when a kernel stack needs them. Files whose timestamps need more
/// than an offset (TSC conversion, guest sync), latency traces, or a page format other
/// than the one checked are left to libtracecmd's own open and iteration. No
/// libtraceevent pointer leaves this file.
public final class TraceDatReader: DMAEventSource {
    /// Who walks the ring-buffer pages.
    enum DataPath: String {
        /// `SubBufferCursor` over the mapped file.
        case pages
        /// libtracecmd's `tracecmd_read_next_data`: the reference, and the fallback.
        case library
    }

    public private(set) var facts: TraceFacts
    private let path: String
    /// libtracecmd's handle (library path only).
    private var handle: OpaquePointer?
    /// The event parser: our own on the page path, libtracecmd's on the other.
    private var tep: OpaquePointer?
    private var plugins: OpaquePointer?
    private var kallsymsLoaded = false
    private var consumed = false
    private(set) var dataPath: DataPath
    /// Why the pages are left to libtracecmd, when they are.
    private(set) var libraryReason: String?
    private var file: MappedFile?
    private var layout: TraceDatLayout?
    private var format: SubBufferFormat?

    /// How long the throw-away child may take to open the file before the
    /// file is judged to hang the library.
    static let probeTimeoutSeconds: UInt32 = 60

    /// libtraceevent parses event formats through static buffers: two opens at
    /// once in one process corrupt each other. Opening (and printk formatting) is serialized.
    static let libraryLock = NSLock()

    public convenience init(path: String) throws {
        try self.init(path: path, dataPath: nil)
    }

    /// `dataPath` nil: the page reader whenever the file allows it.
    init(path: String, dataPath requested: DataPath?) throws {
        self.path = path
        self.facts = TraceFacts(path: path, format: .traceDat)
        var st = stat()
        if stat(path, &st) == 0, st.st_mode & S_IFMT != S_IFREG, requested != .pages {
            // A pipe or a device cannot be mapped: libtracecmd reads it as it always did.
            libraryReason = "not a regular file"
            dataPath = .library
            try openWithLibrary()
            return
        }
        let mapped = try MappedFile(path: path)
        let layout: TraceDatLayout
        do {
            layout = try TraceDatLayout.read(mapped.bytes, owner: mapped)
        } catch {
            // What trace-cmd writes always parses; anything else is not worth risking the C libraries on.
            throw IngestError(path: path, problem: "trace.dat is damaged: \(error)")
        }
        self.layout = layout
        libraryReason = layout.needsLibrary
        dataPath = requested ?? (libraryReason == nil ? .pages : .library)
        if dataPath == .pages, let libraryReason {
            throw IngestError(path: path, problem: "the page reader cannot read this trace.dat: \(libraryReason)")
        }
        guard dataPath == .pages else {
            try openWithLibrary()
            return
        }
        file = mapped
        try buildParser(layout)
        if let reason = pageFormatMismatch() {
            guard requested == nil else {
                throw IngestError(path: path, problem: "the page reader cannot read this trace.dat: \(reason)")
            }
            // Not the page layout this reader checks: libtracecmd's iteration, with its full probe.
            libraryReason = reason
            try switchToLibrary()
            return
        }
        readFacts(layout)
    }

    deinit {
        if let handle {
            tracecmd_close(handle)
        } else if let tep {
            dmatrace_tep_free(tep, plugins)
        }
    }

    /// The `tep` handle from the file's own sections: first in a throw-away child, since
    /// libtraceevent crashes on some corrupted format texts (DOMAIN.md §6), then here.
    private func buildParser(_ layout: TraceDatLayout) throws {
        let outcome = try withSections(layout) { sections -> (Int32, Int32) in
            var signal: Int32 = 0
            // Forked under the lock: a child must not start from another thread's half-done parse.
            var r = Self.libraryLock.withLock { dmatrace_probe_sections(&sections, 0, Self.probeTimeoutSeconds, &signal) }
            if r == Int32(DMATRACE_PROBE_REJECTED_HEADER.rawValue) {
                // As for the libtracecmd probe: a refusal under heavy load is asked again.
                r = Self.libraryLock.withLock { dmatrace_probe_sections(&sections, 0, Self.probeTimeoutSeconds, &signal) }
            }
            guard r == Int32(DMATRACE_PROBE_OK.rawValue) || r == Int32(DMATRACE_PROBE_NO_CHILD.rawValue) else { return (r, signal) }
            Self.libraryLock.withLock {
                dmatrace_quiet_libraries()
                var list: OpaquePointer?
                tep = dmatrace_tep_build(&sections, 0, &list)
                plugins = list
            }
            return (r, signal)
        }
        try Self.judgeProbe(outcome.0, signal: outcome.1, path: path)
        guard tep != nil else { throw IngestError(path: path, problem: "libtraceevent cannot make an event parser from this trace.dat's formats") }
    }

    /// kallsyms only when the first kernel stack needs symbols, probed in a child first like the formats.
    private func loadKallsyms() throws {
        guard !kallsymsLoaded, let tep, let layout else { return }
        kallsymsLoaded = true
        let kallsyms: TraceDatLayout.Blob
        do {
            guard let k = try layout.kallsyms else { return }
            kallsyms = k
        } catch {
            // As the open words a damaged section: the kallsyms are only read later.
            throw IngestError(path: path, problem: "trace.dat is damaged: \(error)")
        }
        var signal: Int32 = 0
        let r = try withSections(layout, kallsyms: kallsyms) { sections in
            Self.libraryLock.withLock { dmatrace_probe_sections(&sections, 1, Self.probeTimeoutSeconds, &signal) }
        }
        try Self.judgeProbe(r, signal: signal, path: path)
        Self.libraryLock.withLock {
            kallsyms.bytes.withMemoryRebound(to: CChar.self) { _ = dmatrace_tep_add_kallsyms(tep, $0.baseAddress, UInt64($0.count)) }
        }
    }

    /// The layout's sections as the C structure, valid inside `body`.
    private func withSections<T>(_ layout: TraceDatLayout, kallsyms: TraceDatLayout.Blob? = nil,
                                 _ body: (inout dmatrace_sections) throws -> T) throws -> T {
        guard let header = layout.headerPageBlob else { throw IngestError(path: path, problem: "trace.dat has no header_page") }
        let systems = layout.formats.map { strdup($0.system) }
        defer { systems.forEach { free($0) } }
        var blobs = zip(layout.formats, systems).map { f, name in
            dmatrace_blob(data: f.format.bytes.baseAddress?.assumingMemoryBound(to: CChar.self),
                          size: UInt64(f.format.bytes.count), system: name)
        }
        func ptr(_ b: TraceDatLayout.Blob?) -> UnsafePointer<CChar>? {
            b?.bytes.baseAddress?.assumingMemoryBound(to: CChar.self)
        }
        return try blobs.withUnsafeMutableBufferPointer { formats in
            var s = dmatrace_sections(
                file_bigendian: layout.bigEndian ? 1 : 0, long_size: Int32(layout.longSize), page_size: Int32(layout.pageSize),
                header_page: ptr(header), header_page_size: UInt64(header.bytes.count),
                formats: UnsafePointer(formats.baseAddress), nformats: Int32(formats.count),
                printk: ptr(layout.printkFormats), printk_size: UInt64(layout.printkFormats?.bytes.count ?? 0),
                cmdlines: ptr(layout.commandLines), cmdlines_size: UInt64(layout.commandLines?.bytes.count ?? 0),
                kallsyms: ptr(kallsyms), kallsyms_size: UInt64(kallsyms?.bytes.count ?? 0))
            return try withExtendedLifetime((layout, kallsyms)) { try body(&s) }
        }
    }

    private func openWithLibrary() throws {
        try Self.probe(path: path)
        try Self.libraryLock.withLock {
            dmatrace_quiet_libraries()
            handle = try Self.openHandle(path: path)
            tep = handle.flatMap { tracecmd_get_tep($0) }
            readLibraryFacts()
        }
    }

    /// Compares the file's header_page / header_event with the layout `SubBufferCursor` reads.
    private func pageFormatMismatch() -> String? {
        guard let tep, let layout else { return "no event parser" }
        let commitSize = Int(tep_get_header_page_size(tep))
        guard commitSize == 4 || commitSize == 8 else { return "page commit word of \(commitSize) bytes" }
        guard tep_get_header_timestamp_size(tep) == 8 else { return "page timestamps are not 8 bytes" }
        guard !tep_is_old_format(tep) else { return "the pre-2.6.31 ring-buffer format" }
        if let m = SubBufferFormat.mismatch(headerPage: layout.headerPage, headerEvent: layout.headerEvent,
                                            commitSize: commitSize) { return m }
        format = SubBufferFormat(commitSize: commitSize, bigEndian: layout.bigEndian)
        return nil
    }

    private func switchToLibrary() throws {
        if let tep { dmatrace_tep_free(tep, plugins) }
        tep = nil
        plugins = nil
        file = nil
        dataPath = .library
        try openWithLibrary()
    }

    private static func probe(path: String) throws {
        var signal: Int32 = 0
        let run = { dmatrace_probe_trace_dat(path, probeTimeoutSeconds, &signal) }
        // The child inherits the parent's memory as it is at fork(): if another thread were
        // inside libtraceevent's format parser then, the child would start from its half-done
        // static state. Forking under the same lock keeps that from happening.
        var outcome = libraryLock.withLock { run() }
        // A refusal has been seen once under heavy parallel load in a multi-threaded test process
        // and never reproduced; a damaged file fails every time, so asking twice costs nothing real.
        if outcome != Int32(DMATRACE_PROBE_OK.rawValue) && outcome != Int32(DMATRACE_PROBE_CRASHED.rawValue)
            && outcome != Int32(DMATRACE_PROBE_TIMEOUT.rawValue) {
            outcome = libraryLock.withLock { run() }
        }
        try judgeProbe(outcome, signal: signal, path: path)
    }

    private static func judgeProbe(_ outcome: Int32, signal: Int32, path: String) throws {
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

    /// Facts of a file opened by libtracecmd.
    private func readLibraryFacts() {
        guard let handle, let tep = tracecmd_get_tep(handle) else { return }
        facts.fileVersion = Int(tracecmd_get_in_file_version(handle))
        facts.cpus = Int(tracecmd_cpus(handle))
        if let clock = tracecmd_get_trace_clock(handle) { facts.clock = String(cString: clock) }
        noteRelease(tracecmd_get_uname(handle).map { String(cString: $0) })
        noteFormats(tep)
        facts.hasKallsyms = tep_find_function(tep, 0xffff_ffff_8100_0000) != nil
            || tep_find_function(tep, 0xffff_8000_8000_0000) != nil
    }

    /// Facts of a file read by the page reader: the layout's, and the formats' from our `tep`.
    private func readFacts(_ layout: TraceDatLayout) {
        facts.fileVersion = layout.version
        facts.cpus = (layout.cpus.map(\.cpu).max() ?? -1) + 1
        facts.clock = layout.traceClock
        noteRelease(layout.uname)
        if let tep { noteFormats(tep) }
        // Whether the file carries symbols; they are parsed when a stack needs them.
        facts.hasKallsyms = layout.hasKallsyms
    }

    private func noteRelease(_ uname: String?) {
        guard let uname else { return }
        // Stored as "Linux <host> <release> <version...>" by trace-cmd record.
        let parts = uname.split(separator: " ")
        facts.kernelRelease = parts.count >= 3 ? String(parts[2]) : parts.first.map(String.init)
    }

    private func noteFormats(_ tep: OpaquePointer) {
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
    }

    /// Asked once, after the replay, only when debug info resolves the findings' stacks.
    public func kallsymsModules() -> [String: [String]]? {
        guard let tep else { return nil }
        // The page path parses kallsyms on demand (probed in a child first).
        if dataPath == .pages { do { try loadKallsyms() } catch { return nil } }
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
        guard let tep else { return nil }
        // Stacks need symbols: the page path parses kallsyms on demand (probed first).
        if dataPath == .pages { do { try loadKallsyms() } catch { return nil } }
        return RecordDecoder(tep: tep)
    }

    public func read(_ handler: (consuming DMAEvent) throws -> Void) throws -> IngestStats {
        switch dataPath {
        case .pages: return try readPages(handler)
        case .library: return try readWithLibrary(handler)
        }
    }

    /// The CPUs' records merged by time, decoded on this thread; compressed pages are
    /// decompressed ahead on a thread per CPU, or here when no core is spare (`cpuStreams`).
    private func readPages(_ handler: (consuming DMAEvent) throws -> Void) throws -> IngestStats {
        guard let tep, let file, let layout, let format else {
            throw IngestError(path: path, problem: "libtracecmd returned no event parser for this file")
        }
        consumed = true
        func corrupted(_ e: CPUDataError) -> IngestError {
            IngestError(path: path, problem: "trace.dat is corrupted: \(e)")
        }
        let merge: RecordMerge
        do {
            merge = try RecordMerge(cpuStreams(file, layout, format),
                                    timestampOffset: UInt64(bitPattern: layout.timestampOffset))
        } catch { throw corrupted(error) }
        var decoder = RecordDecoder(tep: tep)
        var stats = IngestStats()
        var record = tep_record()
        record.ref_count = 1
        record.locked = 1
        while let head = merge.top {
            let ts = head.timestamp
            Self.fill(&record, head.record, ts: ts, cpu: head.cpu)
            stats.records += 1
            stats.noteTimestamp(ts)
            if head.record.missedEvents != 0 {
                let count: UInt64? = head.record.missedEvents > 0 ? UInt64(head.record.missedEvents) : nil
                stats.lostGaps += 1
                if let count { stats.lostEventsCounted += count } else { stats.uncountedGaps += 1 }
                try handler(DMAEvent(timestamp: ts, cpu: head.cpu, pid: -1, task: "", device: nil,
                                     kind: .lostEvents(count: count)))
            }
            // The record's bytes may go with its chunk once the stream moves on: decode first.
            guard var event = decoder.decode(&record, stats: &stats) else {
                do { try merge.advance() } catch { throw corrupted(error) }
                continue
            }
            do {
                // With -T, trace-cmd puts a kernel_stack record right after each event on the
                // same CPU for the same task; a later gap belongs to the next real record.
                if let next = try merge.pull(), decoder.hasKernelStacks, next.missedEvents == 0 {
                    Self.fill(&record, next, ts: next.timestamp &+ UInt64(bitPattern: layout.timestampOffset), cpu: head.cpu)
                    if decoder.isKernelStack(&record), decoder.pid(of: &record) == event.pid {
                        stats.records += 1
                        stats.stackRecords += 1
                        try loadKallsyms()
                        event.stack = decoder.decodeStack(&record)
                        _ = try merge.pull()
                    }
                }
            } catch let e as CPUDataError { throw corrupted(e) }
            merge.settle()
            stats.dmaEvents += 1
            try handler(consume event)
        }
        return stats
    }

    /// One stream per CPU with data; they share the read-ahead budget. Compressed chunks are
    /// decompressed on threads of their own only when a core is left for them.
    private func cpuStreams(_ file: MappedFile, _ layout: TraceDatLayout, _ format: SubBufferFormat) -> [CPUStream] {
        let withData = layout.cpus.filter { $0.size > 0 }
        let spareCores = ProcessInfo.processInfo.activeProcessorCount - 1 - busyThreadsBeside
        return withData.map {
            CPUStream(file: file, data: $0, format: format, pageSize: layout.pageSize, compression: layout.compression,
                      streams: withData.count, inlineDecompression: spareCores < 1)
        }
    }

    /// Threads the caller keeps busy while `read` runs (`sharesCores`).
    private var busyThreadsBeside = 0

    public func sharesCores(withBusyThreads count: Int) { busyThreadsBeside = max(0, count) }

    @inline(__always)
    static func fill(_ record: inout tep_record, _ r: RingRecord, ts: UInt64, cpu: Int32) {
        record.ts = ts
        record.cpu = cpu
        record.size = Int32(r.size)
        record.record_size = Int32(r.size)
        record.missed_events = r.missedEvents
        record.data = UnsafeMutableRawPointer(mutating: r.data)
    }

    private func readWithLibrary(_ handler: (consuming DMAEvent) throws -> Void) throws -> IngestStats {
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
            // Setting an event's stack copies the event: only when there is one.
            if decoder.hasKernelStacks, let stack = takeStack(after: record, cpu: rec.cpu, pid: event.pid,
                                                              decoder: &decoder, stats: &stats, lastSeen: &lastSeen) {
                event.stack = stack
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

extension TraceDatReader {
    /// One record exactly as a data path delivers it, for comparing the two paths.
    struct RawRecord: Equatable, CustomStringConvertible {
        var timestamp: UInt64
        var cpu: Int32
        var missedEvents: Int64
        var type: Int32
        var pid: Int32
        var payload: [UInt8]

        var description: String {
            "ts=\(timestamp) cpu=\(cpu) missed=\(missedEvents) type=\(type) pid=\(pid) size=\(payload.count)"
        }
    }

    /// Every record in time order, undecoded, from this reader's data path.
    func rawRecords(_ body: (RawRecord) -> Void) throws {
        guard let tep else {
            throw IngestError(path: path, problem: "libtracecmd returned no event parser for this file")
        }
        func raw(_ r: UnsafeMutablePointer<tep_record>) -> RawRecord {
            let bytes = r.pointee.data.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: Int(r.pointee.size))) } ?? []
            return RawRecord(timestamp: r.pointee.ts, cpu: Int32(r.pointee.cpu), missedEvents: r.pointee.missed_events,
                             type: tep_data_type(tep, r), pid: tep_data_pid(tep, r), payload: bytes)
        }
        switch dataPath {
        case .library:
            guard let handle else { return }
            var cpu: Int32 = 0
            while let record = tracecmd_read_next_data(handle, &cpu) {
                body(raw(record))
                tracecmd_free_record(record)
            }
        case .pages:
            guard let file, let layout, let format else { return }
            let merge = try RecordMerge(cpuStreams(file, layout, format),
                                        timestampOffset: UInt64(bitPattern: layout.timestampOffset))
            var record = tep_record()
            while let head = merge.top {
                Self.fill(&record, head.record, ts: head.timestamp, cpu: head.cpu)
                body(raw(&record))
                try merge.advance()
            }
        }
    }
}
