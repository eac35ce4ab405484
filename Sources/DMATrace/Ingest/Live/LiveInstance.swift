import CTraceCmd
import CTraceShim
import Foundation

/// Our own tracefs instance (`dma-trace-<pid>`): its own buffers, events and
/// options, so the top-level buffer and other tools' instances (a `trace-cmd
/// record` running at the same time) are never touched.
public final class LiveInstance {
    public struct Settings: Sendable {
        public var name = StaleInstances.prefix + String(getpid())
        /// Per-CPU buffer size; nil keeps the kernel's default.
        public var bufferKB: Int?
        /// The stacktrace option: a `kernel_stack` record after every event, as `trace-cmd record -T`.
        public var stacks = false
        public var systems: [String] = LiveEventInventory.systems
        /// The trace clock; nil: the top-level buffer's. A new instance starts on `local`,
        /// while the kernel moves the top-level buffer to `global` when sched_clock is unstable
        /// ("Unstable clock detected"): `local` then differs between CPUs, and from what
        /// trace-cmd records at the same time.
        public var clock: String?
        public init() {}
    }

    public let mount: TracefsMount
    public let name: String
    public let directory: String
    private var handle: OpaquePointer?
    private var cpuFDs: [Int32] = []
    private(set) var removed = false

    public var markerPath: String { directory + "/trace_marker" }

    public init(mount: TracefsMount, settings: Settings) throws {
        self.mount = mount
        name = settings.name
        directory = mount.path + "/instances/" + settings.name
        if FileManager.default.fileExists(atPath: directory) && mount.isTracefs {
            throw LiveError("tracefs instance \(directory) already exists (another dma-trace with this pid?)")
        }
        guard let h = tracefs_instance_create(settings.name) else {
            throw LiveError("cannot create the tracefs instance \(directory): \(String(cString: strerror(errno)))")
        }
        handle = h
        _ = Self.removedOnTermination
        dmatrace_live_arm(directory, mount.isTracefs ? 0 : 1)
        do {
            try configure(settings)
        } catch {
            let gone = !exists
            _ = teardown()
            if gone { throw LiveError("the tracefs instance \(directory) was removed from outside while it was being set up (by another tool?)") }
            throw error
        }
    }

    deinit { _ = teardown() }

    /// A second signal during a capture ends the process through Termination (record's spools
    /// and unfinished file go there): the instance goes first.
    private static let removedOnTermination: Void = Termination.atTermination { dmatrace_live_emergency_cleanup() }

    private func write(_ file: String, _ value: String) throws {
        guard let handle else { return }
        let n = tracefs_instance_file_write(handle, file, value)
        if n != Int32(value.utf8.count) {
            throw LiveError("cannot write '\(value)' to \(directory)/\(file): \(n < 0 ? String(cString: strerror(errno)) : "short write")")
        }
    }

    private func configure(_ settings: Settings) throws {
        guard let handle else { return }
        // A new instance starts with tracing on: keep it off until the readers are open.
        try write("tracing_on", "0")
        if let clock = settings.clock ?? Self.selectedClock(mount.read("trace_clock")) {
            let offered = Self.clocks(readFile("trace_clock"))
            guard offered.isEmpty || offered.contains(clock) else {
                throw LiveError("this kernel has no trace clock '\(clock)' (it has \(offered.joined(separator: ", ")))")
            }
            try write("trace_clock", clock)
        }
        if let kb = settings.bufferKB {
            if tracefs_instance_set_buffer_size(handle, kb, -1) != 0 {
                throw LiveError("cannot set the buffer size of \(directory) to \(kb) KiB per CPU: \(String(cString: strerror(errno)))")
            }
        }
        if settings.stacks && tracefs_option_enable(handle, TRACEFS_OPTION_STACKTRACE) != 0 {
            throw LiveError("cannot enable the stacktrace option of \(directory)")
        }
        for system in settings.systems {
            if tracefs_event_enable(handle, system, nil) != 0 {
                throw LiveError("cannot enable the \(system) events in \(directory)")
            }
        }
    }

    /// "[local] global counter ..." -> "local"
    static func selectedClock(_ text: String?) -> String? {
        guard let text, let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") else { return nil }
        let name = text[text.index(after: open)..<close]
        return name.isEmpty ? nil : String(name)
    }

    static func clocks(_ text: String?) -> [String] {
        (text ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "[]")) }
    }

    /// The size of this instance's ring-buffer sub-buffers: the unit trace_pipe_raw gives and
    /// a trace.dat's pages are. The page size by default, but a kernel since 6.8 lets each
    /// buffer have its own (`buffer_subbuf_size_kb`), and its `events/header_page` describes
    /// that size (the data field ends where the sub-buffer does). nil when neither says.
    public var subBufferSize: Int? {
        if let text = readFile("buffer_subbuf_size_kb"),
           let kb = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), kb > 0 {
            return kb * 1024
        }
        return Self.subBufferSize(headerPage: readFile("events/header_page") ?? mount.read("events/header_page"))
    }

    /// "field: char data;\toffset:16;\tsize:4080;\tsigned:1;" -> 4096
    static func subBufferSize(headerPage: String?) -> Int? {
        guard let headerPage else { return nil }
        for line in headerPage.split(separator: "\n") {
            let parts = line.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.first.map({ $0.hasPrefix("field:") && $0.split(separator: " ").last == "data" }) == true else { continue }
            func number(_ key: String) -> Int? {
                parts.lazy.compactMap { p -> Int? in
                    let kv = p.split(separator: ":")
                    return kv.count == 2 && kv[0] == key ? Int(kv[1]) : nil
                }.first
            }
            if let offset = number("offset"), let size = number("size"), offset >= 0, size > 0 { return offset + size }
        }
        return nil
    }

    /// The clock the instance records with.
    public var clock: String? { Self.selectedClock(readFile("trace_clock")) }

    /// CPUs as the instance lists them under per_cpu/.
    public var cpus: [Int32] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/per_cpu")) ?? []
        return names.compactMap { $0.hasPrefix("cpu") ? Int32($0.dropFirst(3)) : nil }.sorted()
    }

    /// Opens a CPU's raw ring buffer; we own the descriptor (close-on-exec, so the traced
    /// command never holds the instance busy, and tracked for the signal path).
    func openRawCPU(_ cpu: Int32, subBufferSize: Int) throws -> RawCPUBuffer {
        let path = directory + "/per_cpu/cpu\(cpu)/trace_pipe_raw"
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw LiveError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard let tcpu = tracefs_cpu_alloc_fd(fd, Int32(subBufferSize), true) else {
            close(fd)
            throw LiveError("libtracefs cannot read \(path)")
        }
        dmatrace_live_track_fd(fd)
        cpuFDs.append(fd)
        return RawCPUBuffer(cpu: cpu, fd: fd, tcpu: tcpu, subBufferSize: subBufferSize, statsFile: "per_cpu/cpu\(cpu)/stats")
    }

    func closeRawCPU(_ buffer: RawCPUBuffer) {
        guard let tcpu = buffer.tcpu else { return }
        dmatrace_live_untrack_fd(buffer.fd)
        cpuFDs.removeAll { $0 == buffer.fd }
        tracefs_cpu_close(tcpu)
        buffer.tcpu = nil
    }

    public func tracing(_ on: Bool) throws {
        guard let handle else { return }
        if (on ? tracefs_trace_on(handle) : tracefs_trace_off(handle)) != 0 {
            throw LiveError("cannot switch tracing \(on ? "on" : "off") in \(directory)")
        }
    }

    public var exists: Bool { FileManager.default.fileExists(atPath: directory) }

    /// A file of the instance, as text (stats, options); nil when unreadable.
    func readFile(_ relative: String) -> String? {
        let bytes = LiveCapture.readWhole(directory + "/" + relative)
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }

    /// Tracing off, descriptors closed, instance removed. nil on success, else why not.
    public func teardown() -> String? {
        guard let handle else { return nil }
        _ = tracefs_trace_off(handle)
        for fd in cpuFDs { dmatrace_live_untrack_fd(fd) }
        cpuFDs.removeAll()
        var problem: String?
        if exists {
            if tracefs_instance_destroy(handle) != 0 {
                let why = String(cString: strerror(errno))
                if !mount.isTracefs && dmatrace_remove_tree(directory) == 0 {
                    problem = nil
                } else {
                    problem = "cannot remove the tracefs instance \(directory): \(why)" +
                        (errno == EBUSY ? " (a process of the traced command still holds one of its files open?)" : "")
                }
            }
        }
        tracefs_instance_free(handle)
        self.handle = nil
        removed = problem == nil
        if removed { dmatrace_live_disarm() }
        return problem
    }
}

/// One CPU's raw ring buffer (`per_cpu/cpuN/trace_pipe_raw`), read a sub-buffer at a time.
final class RawCPUBuffer {
    let cpu: Int32
    let fd: Int32
    fileprivate(set) var tcpu: OpaquePointer?
    let subBufferSize: Int
    let statsFile: String
    private var page: [UInt8]

    fileprivate init(cpu: Int32, fd: Int32, tcpu: OpaquePointer, subBufferSize: Int, statsFile: String) {
        self.cpu = cpu
        self.fd = fd
        self.tcpu = tcpu
        self.subBufferSize = subBufferSize
        self.statsFile = statsFile
        page = [UInt8](repeating: 0, count: subBufferSize)
    }

    enum ReadResult {
        case page([UInt8])
        case empty
        case failed(Int32)
    }

    /// One sub-buffer if there is one now. `fullOnly` takes only sub-buffers the kernel has
    /// filled (spliced, as trace-cmd does: a recording is not padded with half-empty pages);
    /// otherwise a partly filled one is copied out too (watch: findings without delay).
    /// `flush` reads the rest at the end, partly filled pages included.
    func read(flush: Bool = false, fullOnly: Bool = false) -> ReadResult {
        guard let tcpu else { return .empty }
        let n = page.withUnsafeMutableBytes { buf in
            flush ? tracefs_cpu_flush(tcpu, buf.baseAddress)
                : fullOnly ? tracefs_cpu_buffered_read(tcpu, buf.baseAddress, true)
                : tracefs_cpu_read(tcpu, buf.baseAddress, true)
        }
        if n > 0 { return .page(Array(page[0..<Int(n)])) }
        if n == 0 || errno == EAGAIN || errno == EINTR { return .empty }
        return .failed(errno)
    }
}

/// A CPU's ring-buffer counters (per_cpu/cpuN/stats).
struct RingBufferStats: Equatable {
    var entries: UInt64 = 0
    var overrun: UInt64 = 0
    var commitOverrun: UInt64 = 0
    var droppedEvents: UInt64 = 0
    var readEvents: UInt64 = 0
    /// The trace clock at the time of reading, in ns ("now ts: 123.456789").
    var now: UInt64?

    init() {}

    init(parsing text: String) {
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch key {
            case "entries": entries = UInt64(value) ?? 0
            case "overrun": overrun = UInt64(value) ?? 0
            case "commit overrun": commitOverrun = UInt64(value) ?? 0
            case "dropped events": droppedEvents = UInt64(value) ?? 0
            case "read events": readEvents = UInt64(value) ?? 0
            case "now ts": now = Self.nanoseconds(value)
            default: continue
            }
        }
    }

    /// "12345.678901" (seconds.microseconds) to ns; a counter clock gives a plain integer.
    static func nanoseconds(_ s: String) -> UInt64? {
        let parts = s.split(separator: ".", maxSplits: 1)
        guard let whole = UInt64(parts.first ?? "") else { return nil }
        guard parts.count == 2 else { return whole }
        let frac = String(parts[1].prefix(9))
        guard let f = UInt64(frac) else { return nil }
        var scale: UInt64 = 1
        for _ in 0..<(9 - frac.count) { scale *= 10 }
        return whole * 1_000_000_000 + f * scale
    }
}
