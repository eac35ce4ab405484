import CTraceCmd
import CTraceShim
import Foundation

/// Receives what the capture reads, on the capture's reader thread.
public protocol LivePageSink: AnyObject {
    /// Called once before the first page: the size of every sub-buffer the capture reads
    /// (the kernel's, which need not be the page size). Throwing stops the capture.
    func begin(subBufferSize: Int) throws
    /// One raw sub-buffer of `cpu`, as the kernel wrote it. Returning false stops the capture
    /// (the sink cannot take more: disk full).
    func take(page: [UInt8], cpu: Int) -> Bool
    /// Asks for the ring buffer's clock at the start of every drain round.
    var wantsClock: Bool { get }
    /// Every CPU has been read up to `now` (the trace clock when the round began; nil when
    /// the kernel does not say), except the CPUs in `unread`, whose ring buffer still counts
    /// entries after the drain. Returning false stops the capture.
    func roundEnded(now: UInt64?, unread: Set<Int>) -> Bool
}

public extension LivePageSink {
    func begin(subBufferSize: Int) throws {}
    var wantsClock: Bool { false }
    func roundEnded(now: UInt64?, unread: Set<Int>) -> Bool { true }
}

/// A capture: our instance, its raw per-CPU buffers drained by one reader thread, the
/// command traced (or a duration, or Ctrl-C), and everything torn down on the way out.
public final class LiveCapture {
    public struct Options: Sendable {
        public var tracefs: String?
        public var instance = LiveInstance.Settings()
        public var allowPartial = false
        public var cleanStale = false
        /// Seconds to trace when no command is given; nil: until a signal.
        public var duration: Double?
        public var command: [String] = []
        /// How long the reader sleeps when every buffer was empty.
        public var pollInterval: Double = 0.02
        /// Read only sub-buffers the kernel filled (record), not partly filled ones (watch).
        public var fullPagesOnly = false
        /// Sub-buffers read from one CPU before the next CPU's turn. Draining a busy CPU to the
        /// end first let the other CPUs' rings fill (and lose events) meanwhile, and the merge
        /// had to hold everything read until the others caught up.
        public var pagesPerTurn = 64
        /// The command writes its standard output to our standard error (watch --format json:
        /// our standard output is NDJSON and nothing else).
        public var commandStdoutToStderr = false
        public init() {}
    }

    public enum StopReason: Sendable, Equatable {
        case commandExited(status: Int32)
        case commandKilled(signal: Int32)
        case duration
        case signal(Int32)
        case sinkFull
    }

    public struct Outcome: Sendable {
        public var stop: StopReason
        public var pages: [Int: Int] = [:]
        /// Ring-buffer counters at the end, per CPU, as per_cpu/cpuN/stats says.
        public var stats: [Int: String] = [:]
        /// Events the ring buffer dropped or overwrote, by CPU (from the stats).
        public var lostByCPU: [Int: UInt64] = [:]
        public var metadata: TraceDatMetadata
        public var instanceProblem: String?
    }

    public let options: Options
    public private(set) var mount: TracefsMount!
    public private(set) var inventory: LiveEventInventory!
    public private(set) var instance: LiveInstance?
    /// Said on stderr before tracing starts: which events, stale instances.
    public var notes: (String) -> Void = { FileHandle.standardError.write(Data(("dma-trace: " + $0 + "\n").utf8)) }

    public init(options: Options) { self.options = options }

    /// The CPUs tracefs has buffers for (per_cpu/cpuN of the top level).
    public var cpuNumbers: [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: mount.path + "/per_cpu")) ?? []
        return names.compactMap { $0.hasPrefix("cpu") ? Int($0.dropFirst(3)) : nil }.sorted()
    }

    /// Resolves a command word like a shell would, before anything is enabled.
    static func resolve(_ word: String) -> String? {
        if word.contains("/") { return access(word, X_OK) == 0 ? word : nil }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(word)"
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDir), !isDir.boolValue,
               access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Checks everything that can be checked without enabling anything.
    public func prepare() throws {
        if let word = options.command.first, Self.resolve(word) == nil {
            throw LiveError("command not found: \(word)")
        }
        mount = try TracefsMount.locate(options.tracefs)
        inventory = LiveEventInventory(mount: mount)
        try inventory.check(release: mount.kernelRelease, allowPartial: options.allowPartial)
        let own = options.instance.name
        for stale in StaleInstances.find(mount: mount, excluding: own) {
            if options.cleanStale {
                if let problem = StaleInstances.remove(stale, mount: mount) { notes(problem) } else { notes("removed stale instance \(stale)") }
            } else {
                notes("stale tracefs instance \(mount.path)/instances/\(stale) from a run that was killed (its pid is gone); --clean-stale removes it")
            }
        }
    }

    /// The whole of a file whose size the kernel does not state (tracefs, procfs say 0, and
    /// a single read stops at a page): read to its end.
    static func readWhole(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += chunk[0..<n]
        }
        return out
    }

    /// Formats and tables as the kernel gives them (the same for every instance).
    func metadata(pageSize: Int, systems: [String]) -> TraceDatMetadata {
        func bytes(_ relative: String) -> [UInt8] { Self.readWhole(mount.path + "/" + relative) }
        // The instance's own header_page describes its sub-buffers (the top level's, another size).
        let own = instance.map { Self.readWhole($0.directory + "/events/header_page") } ?? []
        func formats(_ system: String) -> [[UInt8]] {
            let names = (inventory.events[system]) ?? ((try? FileManager.default.contentsOfDirectory(atPath: mount.path + "/events/" + system)) ?? []).sorted()
            return names.map { bytes("events/\(system)/\($0)/format") }.filter { !$0.isEmpty }
        }
        var m = TraceDatMetadata(pageSize: pageSize, headerPage: own.isEmpty ? bytes("events/header_page") : own,
                                 headerEvent: bytes("events/header_event"), ftraceFormats: formats("ftrace"),
                                 systems: systems.map { ($0, formats($0)) })
        m.printkFormats = bytes("printk_formats")
        m.cmdlines = bytes("saved_cmdlines")
        var u = utsname()
        uname(&u)
        func field<T>(_ t: inout T) -> String { withUnsafeBytes(of: &t) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } }
        let release = mount.kernelRelease
        m.uname = "Linux \(field(&u.nodename)) \(release) \(mount.isTracefs ? field(&u.version) : "") \(field(&u.machine))"
        m.traceClock = instance?.readFile("trace_clock")
        return m
    }

    /// The running kernel's symbols (/proc/kallsyms; a fixture keeps its own next to its
    /// formats). Read when tracing starts and again at the END of the capture (`Outcome.metadata`):
    /// a driver loaded meanwhile is only in the second, which record stores and watch names
    /// the last stacks with.
    func kallsyms() -> [UInt8] {
        Self.readWhole(mount.isTracefs ? "/proc/kallsyms" : mount.path + "/kallsyms")
    }

    /// The loaded modules (/proc/modules), to tell when kallsyms must be read again; nil when
    /// unreadable (a fixture without one).
    func modules() -> String? {
        let bytes = Self.readWhole(mount.isTracefs ? "/proc/modules" : mount.path + "/modules")
        return bytes.isEmpty && !mount.isTracefs ? nil : String(decoding: bytes, as: UTF8.self)
    }

    /// Runs the capture; `sink` gets every page on the reader thread. Throws LiveError for a fault;
    /// the instance is gone when this returns or throws.
    public func run(sink: LivePageSink) throws -> Outcome {
        var settings = options.instance
        settings.systems = inventory.present
        notes("tracing \(inventory.summary) in instance \(mount.path)/instances/\(settings.name)")
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw LiveError("cannot make a pipe: \(String(cString: strerror(errno)))") }
        _ = fcntl(fds[0], F_SETFL, O_NONBLOCK); _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC); _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        defer { close(fds[0]); close(fds[1]); dmatrace_live_default_signals() }
        _ = dmatrace_live_install_signals(fds[1])

        let inst = try LiveInstance(mount: mount, settings: settings)
        instance = inst
        var buffers: [RawCPUBuffer] = []
        var child: pid_t = 0
        func fail(_ error: Error) -> Error {
            for b in buffers { inst.closeRawCPU(b) }
            if child > 0 { kill(child, SIGTERM); var st: Int32 = 0; waitpid(child, &st, 0) }
            if let problem = inst.teardown() { return LiveError("\(error); also: \(problem)") }
            return error
        }
        let pageSize: Int
        do {
            pageSize = inst.subBufferSize ?? Int(getpagesize())
            try sink.begin(subBufferSize: pageSize)
            for cpu in inst.cpus { buffers.append(try inst.openRawCPU(cpu, subBufferSize: pageSize)) }
            if buffers.isEmpty { throw LiveError("instance \(inst.directory) has no per_cpu buffers") }
            try inst.tracing(true)
        } catch {
            if !inst.exists {
                throw fail(LiveError("the tracefs instance \(inst.directory) was removed from outside while it was being set up (by another tool?)"))
            }
            throw fail(error)
        }
        var meta = metadata(pageSize: pageSize, systems: settings.systems)
        if !options.command.isEmpty {
            do { child = try spawn(options.command, marker: inst.markerPath) } catch { throw fail(error) }
            dmatrace_live_set_child(child)
        }
        let deadline = options.duration.map { Date().addingTimeInterval($0) }
        var stop: StopReason?
        var pages: [Int: Int] = [:]
        var sinkFull = false
        /// One turn of a CPU: up to `pagesPerTurn` sub-buffers. Whether it read any, and whether
        /// it stopped at the bound with more perhaps waiting.
        func drain(_ b: RawCPUBuffer, flush: Bool) throws -> (any: Bool, more: Bool) {
            var taken = 0
            while !sinkFull {
                guard taken < max(1, options.pagesPerTurn) else { return (true, true) }
                switch b.read(flush: flush, fullOnly: options.fullPagesOnly) {
                case .page(let page):
                    taken += 1
                    pages[Int(b.cpu), default: 0] += 1
                    if !sink.take(page: page, cpu: Int(b.cpu)) { sinkFull = true }
                case .empty:
                    return (taken > 0, false)
                case .failed(let err):
                    if !inst.exists { throw LiveError("the tracefs instance \(inst.directory) was removed from outside while tracing (by another tool?); the capture stopped") }
                    throw LiveError("reading CPU \(b.cpu)'s ring buffer failed: \(String(cString: strerror(err)))")
                }
            }
            return (taken > 0, false)
        }
        do {
            while stop == nil {
                var any = false
                // The clock first: whatever was stamped before it is in the buffers we drain next.
                let now = sink.wantsClock ? buffers.first.flatMap { inst.readFile($0.statsFile) }.flatMap { RingBufferStats(parsing: $0).now } : nil
                // A CPU stopped at its turn's bound still holds events: the merge waits for it.
                var unread = Set<Int>()
                for b in buffers {
                    let turn = try drain(b, flush: false)
                    any = turn.any || any
                    if turn.more { unread.insert(Int(b.cpu)) }
                }
                // A CPU's last events can stay unreadable after a drain (seen in the lab: an
                // event of a CPU that then went quiet arrived a second later); its stats still
                // count them as entries, so the merge waits for that CPU.
                if sink.wantsClock && !sinkFull {
                    for b in buffers where !unread.contains(Int(b.cpu))
                        && (inst.readFile(b.statsFile).map { RingBufferStats(parsing: $0).entries } ?? 0) > 0 {
                        unread.insert(Int(b.cpu))
                    }
                }
                if !sinkFull && !sink.roundEnded(now: now, unread: unread) { sinkFull = true }
                if sinkFull { stop = .sinkFull; break }
                var sig: UInt8 = 0
                if read(fds[0], &sig, 1) == 1 { stop = .signal(Int32(sig)); break }
                if child > 0 {
                    var status: Int32 = 0
                    if waitpid(child, &status, WNOHANG) == child {
                        child = 0
                        dmatrace_live_set_child(0)
                        let code = status & 0x7f
                        stop = code == 0 ? .commandExited(status: (status >> 8) & 0xff) : .commandKilled(signal: code)
                        break
                    }
                }
                if let deadline, Date() >= deadline { stop = .duration; break }
                if !inst.exists {
                    throw LiveError("the tracefs instance \(inst.directory) was removed from outside while tracing (by another tool?); the capture stopped")
                }
                if !any { usleep(UInt32(options.pollInterval * 1e6)) }
            }
            try inst.tracing(false)
            // What is left, CPU by CPU in turns as above, each turn's events merged before the
            // next: the clock read after tracing stopped bounds everything still in the buffers.
            let end = sink.wantsClock ? buffers.first.flatMap { inst.readFile($0.statsFile) }.flatMap { RingBufferStats(parsing: $0).now } : nil
            var waiting = buffers
            while !waiting.isEmpty && !sinkFull {
                var next: [RawCPUBuffer] = []
                for b in waiting where !sinkFull {
                    if try drain(b, flush: true).more { next.append(b) }
                }
                waiting = next
                if !sinkFull && !waiting.isEmpty && !sink.roundEnded(now: end, unread: Set(waiting.map { Int($0.cpu) })) { sinkFull = true }
            }
        } catch {
            throw fail(error)
        }
        if child > 0 {
            // A signal ended the capture: the command gets it too, and we wait for it.
            kill(child, SIGTERM)
            var status: Int32 = 0
            waitpid(child, &status, 0)
            dmatrace_live_set_child(0)
        }
        var outcome = Outcome(stop: stop ?? .duration, metadata: meta)
        outcome.pages = pages
        for b in buffers {
            let text = inst.readFile(b.statsFile) ?? ""
            outcome.stats[Int(b.cpu)] = text
            let s = RingBufferStats(parsing: text)
            if s.overrun + s.droppedEvents > 0 { outcome.lostByCPU[Int(b.cpu)] = s.overrun + s.droppedEvents }
            inst.closeRawCPU(b)
        }
        meta.kallsyms = kallsyms()
        let cmdlines = Self.readWhole(mount.path + "/saved_cmdlines")
        if !cmdlines.isEmpty { meta.cmdlines = cmdlines }
        meta.cpuStats = buffers.map { outcome.stats[Int($0.cpu)] ?? "" }
        outcome.metadata = meta
        outcome.instanceProblem = inst.teardown()
        return outcome
    }

    /// Starts CMD with the instance's trace_marker in its environment.
    func spawn(_ command: [String], marker: String) throws -> pid_t {
        guard let path = Self.resolve(command[0]) else { throw LiveError("command not found: \(command[0])") }
        var env = ProcessInfo.processInfo.environment
        env["DMA_TRACE_MARKER"] = marker
        let envStrings = env.map { "\($0.key)=\($0.value)" }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        // The spawning thread may block signals (a test runner's threads do): the command must not inherit that.
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if options.commandStdoutToStderr { posix_spawn_file_actions_adddup2(&actions, 2, 1) }
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = envStrings.map { strdup($0) } + [nil]
        defer { for p in argv + envp { free(p) } }
        let rc = posix_spawn(&pid, path, &actions, &attr, argv, envp)
        guard rc == 0 else { throw LiveError("cannot start \(command[0]): \(String(cString: strerror(rc)))") }
        return pid
    }
}
