import CTraceCmd
import DequeModule
import Foundation

/// Live sub-buffers to events: the page decoder and the record decoder of the trace.dat
/// path (`SubBufferCursor`, `RecordDecoder`), fed by tracefs instead of a file. Pages are
/// decoded per CPU as they arrive; the CPUs are then merged by time (`LiveMerger`).
final class LiveDecoder {
    private var decoder: RecordDecoder
    private let format: SubBufferFormat
    private var record = tep_record()
    /// With stacks on, an event waits for the next record of its CPU: its kernel_stack.
    private var pending = AddressMap<DMAEvent>()
    private(set) var stats = IngestStats()
    // Per-CPU tables are AddressMaps: every record touches them, and SipHash showed in profiles.
    /// Missed events the sub-buffers stated, per CPU (to compare with the ring buffer's own counters).
    private var missed = AddressMap<UInt64>()
    /// Each CPU's last record: where a loss only the ring buffer's counters show is placed.
    private var lastTimestampOfCPU = AddressMap<UInt64>()

    /// `tep` holds the running kernel's formats (tracefs_local_events); `headerPage`/`headerEvent`
    /// are its events/header_page and header_event, checked as the trace.dat path checks a file's.
    init(tep: OpaquePointer, headerPage: String, headerEvent: String) throws {
        let commitSize = Int(tep_get_header_page_size(tep))
        guard commitSize == 4 || commitSize == 8 else {
            throw LiveError("this kernel's ring-buffer pages have a \(commitSize)-byte commit word; the page decoder reads 4 or 8")
        }
        if let problem = SubBufferFormat.mismatch(headerPage: headerPage, headerEvent: headerEvent, commitSize: commitSize) {
            throw LiveError("this kernel's ring-buffer page format is not the one the page decoder reads: \(problem)")
        }
        format = SubBufferFormat(commitSize: commitSize, bigEndian: tep_is_local_bigendian(tep))
        decoder = RecordDecoder(tep: tep)
        record.ref_count = 1
        record.locked = 1
    }

    /// Decodes one raw sub-buffer of `cpu`; `emit` gets its events in order.
    func decode(page: [UInt8], cpu: Int, emit: (DMAEvent) -> Void) throws {
        try page.withUnsafeBytes { bytes in
            var cursor: SubBufferCursor
            do { cursor = try SubBufferCursor(page: bytes, format: format) } catch {
                throw LiveError("CPU \(cpu)'s ring buffer gave a damaged page: \(error)")
            }
            while true {
                let next: RingRecord?
                do { next = try cursor.nextRecord() } catch {
                    throw LiveError("CPU \(cpu)'s ring buffer gave a damaged page: \(error)")
                }
                guard let r = next else { break }
                take(r, cpu: cpu, emit: emit)
            }
        }
    }

    private func take(_ r: RingRecord, cpu: Int, emit: (DMAEvent) -> Void) {
        TraceDatReader.fill(&record, r, ts: r.timestamp, cpu: Int32(cpu))
        stats.records += 1
        stats.noteTimestamp(r.timestamp)
        lastTimestampOfCPU[UInt64(cpu)] = r.timestamp
        if r.missedEvents != 0 {
            // A stack cannot come across a gap: the waiting event goes out without one.
            flush(cpu: cpu, emit: emit)
            let count: UInt64? = r.missedEvents > 0 ? UInt64(r.missedEvents) : nil
            stats.lostGaps += 1
            if let count { stats.lostEventsCounted += count; missed.modify(UInt64(cpu), default: 0) { $0 += count } } else { stats.uncountedGaps += 1 }
            emit(DMAEvent(timestamp: r.timestamp, cpu: Int32(cpu), pid: -1, task: "", device: nil, kind: .lostEvents(count: count)))
        }
        if !pending.isEmpty, var waiting = pending.removeValue(forKey: UInt64(cpu)) {
            if decoder.isKernelStack(&record), decoder.pid(of: &record) == waiting.pid {
                stats.stackRecords += 1
                waiting.stack = decoder.decodeStack(&record)
                emit(waiting)
                return
            }
            emit(waiting)
        }
        guard let event = decoder.decode(&record, stats: &stats) else { return }
        stats.dmaEvents += 1
        if decoder.hasKernelStacks { pending[UInt64(cpu)] = event } else { emit(event) }
    }

    /// The event still waiting for a stack on `cpu`, at the end of the data.
    func flush(cpu: Int, emit: (DMAEvent) -> Void) {
        if let waiting = pending.removeValue(forKey: UInt64(cpu)) { emit(waiting) }
    }

    func flushAll(emit: (DMAEvent) -> Void) {
        for cpu in pending.entries.map(\.key).sorted() { flush(cpu: Int(cpu), emit: emit) }
    }

    /// Losses the ring buffer counted (overrun, dropped) beyond what its pages said: a gap at
    /// the CPU's last record, counted as trace-cmd's statistics would show it.
    func noteCounterLoss(cpu: Int, counted: UInt64, emit: (DMAEvent) -> Void) {
        let stated = missed[UInt64(cpu)] ?? 0
        guard counted > stated else { return }
        let extra = counted - stated
        stats.lostGaps += 1
        stats.lostEventsCounted += extra
        missed[UInt64(cpu)] = counted
        emit(DMAEvent(timestamp: lastTimestampOfCPU[UInt64(cpu)] ?? stats.lastTimestamp ?? 0, cpu: Int32(cpu), pid: -1, task: "",
                      device: nil, kind: .lostEvents(count: extra)))
    }
}

/// The CPUs' events in time order. An event is handed on once no CPU can still deliver an
/// older one: every CPU that delivered events recently has delivered one at least as new
/// (its own events come in order), and a CPU silent for a whole reorder window is taken to
/// be read up to the ring buffer's clock at the start of the drain round, less the window: an event is stamped when the kernel reserves its slot and readable only
/// once committed, and a CPU can stall in between (an interrupt, or under a hypervisor a
/// descheduled vCPU: the lab's TCG guests on a loaded host stall for well over 50 ms). An
/// event that still comes after later ones were handed on is counted as late, and the window
/// doubles, up to `maxWindow`.
struct LiveMerger {
    /// Per CPU seen (in order of first appearance): its queue and newest timestamp. Arrays, not
    /// dictionaries keyed by CPU: the merge looks at every CPU's head for every event it hands on.
    private var slotOfCPU = AddressMap<Int>()
    private var cpuOfSlot: [Int] = []
    private var queues: [Deque<DMAEvent>] = []
    /// The newest timestamp each CPU has delivered.
    private var newest: [UInt64?] = []
    /// Every CPU the capture reads (a CPU that never delivered counts as silent).
    var cpus: [Int] = []
    /// Events that arrived older than what was already handed on (beyond the window).
    private(set) var late: UInt64 = 0
    /// The first late event: its CPU and time, the latest time already handed on then, and
    /// the ring buffer's clock at the last drain round before it came.
    private(set) var firstLate: (cpu: Int32, timestamp: UInt64, released: UInt64, clock: UInt64?)?
    private var lastClock: UInt64?
    private var released: UInt64 = 0
    private(set) var window: UInt64
    let maxWindow: UInt64

    init(window: UInt64 = 4_000_000_000, maxWindow: UInt64 = 16_000_000_000) {
        self.window = window
        self.maxWindow = max(window, maxWindow)
    }

    private mutating func slot(_ cpu: Int) -> Int {
        let key = UInt64(bitPattern: Int64(cpu))
        if let s = slotOfCPU[key] { return s }
        let s = queues.count
        slotOfCPU[key] = s
        cpuOfSlot.append(cpu)
        queues.append([])
        newest.append(nil)
        return s
    }

    mutating func add(_ event: DMAEvent) {
        if event.timestamp < released {
            late += 1
            if firstLate == nil { firstLate = (event.cpu, event.timestamp, released, lastClock) }
            window = min(window * 2, maxWindow)
        }
        let s = slot(Int(event.cpu))
        queues[s].append(event)
        if event.timestamp > newest[s] ?? 0 { newest[s] = event.timestamp }
    }

    /// Hands on every event up to `watermark - window` (nil: everything), oldest first,
    /// ties by CPU as the trace.dat merge does.
    /// CPUs in `unread` still hold events the drain could not read: they bound the release
    /// by their newest delivered event even when quiet.
    mutating func release(upTo watermark: UInt64?, unread: Set<Int> = [], _ handler: (DMAEvent) throws -> Void) rethrows {
        var limit: UInt64?
        if let now = watermark {
            lastClock = now
            let quiet = now > window ? now - window : 0
            func bound(_ cpu: Int, _ n: UInt64?) -> UInt64 {
                if unread.contains(cpu) { return n ?? 0 }
                guard let n, n > quiet else { return quiet }
                return n
            }
            var lowest = quiet
            var any = false
            for (s, cpu) in cpuOfSlot.enumerated() {
                let b = bound(cpu, newest[s])
                lowest = any ? min(lowest, b) : b
                any = true
            }
            for cpu in cpus where slotOfCPU[UInt64(bitPattern: Int64(cpu))] == nil {
                let b = bound(cpu, nil)
                lowest = any ? min(lowest, b) : b
                any = true
            }
            limit = lowest
        }
        // Ties go to the lower CPU number, as the trace.dat merge does.
        let order = queues.indices.sorted { cpuOfSlot[$0] < cpuOfSlot[$1] }
        while true {
            var best = -1
            var bestTS = UInt64.max
            for s in order {
                guard let head = queues[s].first else { continue }
                if head.timestamp < bestTS { best = s; bestTS = head.timestamp }
            }
            guard best >= 0, limit.map({ bestTS <= $0 }) ?? true else { return }
            let event = queues[best].removeFirst()
            if event.timestamp > released { released = event.timestamp }
            try handler(event)
        }
    }
}
