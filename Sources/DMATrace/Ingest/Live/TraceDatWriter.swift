import Foundation

/// Everything of a trace.dat apart from the ring-buffer pages, as the kernel gave it.
public struct TraceDatMetadata: Sendable {
    public var pageSize: Int
    public var longSize = MemoryLayout<Int>.size
    public var headerPage: [UInt8]
    public var headerEvent: [UInt8]
    /// events/ftrace/*/format
    public var ftraceFormats: [[UInt8]]
    /// events/SYSTEM/*/format for every system recorded, in order.
    public var systems: [(name: String, formats: [[UInt8]])]
    public var kallsyms: [UInt8] = []
    public var printkFormats: [UInt8] = []
    public var cmdlines: [UInt8] = []
    /// "Linux host release version machine", as trace-cmd stores `uname`.
    public var uname: String?
    /// The trace_clock file ("[local] global counter ...").
    public var traceClock: String?
    /// per_cpu/cpuN/stats at the end, one string per CPU.
    public var cpuStats: [String] = []

    public init(pageSize: Int, headerPage: [UInt8], headerEvent: [UInt8], ftraceFormats: [[UInt8]],
                systems: [(name: String, formats: [[UInt8]])]) {
        self.pageSize = pageSize
        self.headerPage = headerPage
        self.headerEvent = headerEvent
        self.ftraceFormats = ftraceFormats
        self.systems = systems
    }
}

/// Where the written file stopped short, when it did: per CPU, the pages captured and
/// the pages in the file, and the time of the last page that made it.
public struct TraceDatTruncation: Sendable, CustomStringConvertible {
    public struct Loss: Sendable {
        public var cpu: Int
        public var captured: Int
        public var kept: Int
        /// The first kept page's and the last kept page's timestamps (raw trace clock, ns).
        public var keptFrom: UInt64?
        public var keptUntil: UInt64?
    }
    public var losses: [Loss]
    public var reason: String
    public var description: String {
        let parts = losses.map { l -> String in
            let span: String
            if l.kept == 0 { span = "none kept" } else {
                let from = l.keptFrom.map { formatSeconds($0) + " s" } ?? "?"
                let until = l.keptUntil.map { formatSeconds($0) + " s" } ?? "?"
                span = "pages from \(from) to \(until) kept"
            }
            return "CPU \(l.cpu): \(l.kept) of \(l.captured) pages, \(span)"
        }
        return "\(reason): " + parts.joined(separator: "; ")
    }
}

/// Writes trace.dat version 6 (trace-cmd.dat.v6(5)): the initial format, header_page and
/// header_event, ftrace and event formats, kallsyms, printk formats, cmdlines, the CPU count,
/// options and the flyrecord table, then each CPU's raw pages, page aligned.
///
/// Pages arrive interleaved by CPU while the CPU data of a v6 file is contiguous per CPU, so
/// they are spooled to one file per CPU next to the output (as trace-cmd does) and joined
/// behind the header at the end; kallsyms is read then too, so modules loaded during the
/// capture are in it. The header and the flyrecord table are written first: if the disk
/// fills while joining, the table is rewritten to what really is in the file, so what is
/// left is a valid trace.dat up to the last whole page.
///
/// The file is made as a temporary file next to the output and renamed over it when it is
/// complete; it and the spools are Termination's temporary files. A signal, a fault or a
/// kill leaves the old file (or none) and no spool, never half a trace.dat.
public final class TraceDatV6Writer {
    public let path: String
    /// The ring buffer's sub-buffer size: every page of the file is one.
    public private(set) var pageSize: Int
    private var spools: [Int: (fd: Int32, pages: Int, path: String)] = [:]
    private var spoolFailure: String?

    /// A disk of this many bytes for the spools and the file together (tests of a full disk);
    /// nil: the real disk's own limit.
    private let spaceLimit: Int?
    private var finalFD: Int32 = -1
    /// Where the file is made, and what it replaces (a link's target, not the link).
    private var temporary: String?
    private let target: String
    private let mode: mode_t

    public init(path: String, pageSize: Int, spaceLimit: Int? = nil) throws {
        self.path = path
        self.pageSize = pageSize
        self.spaceLimit = spaceLimit
        var resolved = path
        var info = stat()
        if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK, let real = realpath(path, nil) {
            resolved = String(cString: real)
            free(real)
        }
        target = resolved
        if stat(resolved, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFREG else { throw LiveError("cannot write \(path): not a regular file") }
            mode = info.st_mode & 0o7777
        } else {
            let mask = umask(0o022)
            umask(mask)
            mode = 0o666 & ~mask
        }
        // Made now, so an output that cannot be written fails before a whole capture.
        let (fd, made) = try Self.temporaryFile(beside: resolved, suffix: "tmp", for: path)
        close(fd)
        temporary = made
    }

    deinit { discard() }

    /// `.NAME.KIND-XXXXXX` in the output's folder (the same file system: the rename is atomic
    /// and the disk-full accounting sees one disk), registered with Termination.
    private static func temporaryFile(beside file: String, suffix: String, for destination: String) throws -> (Int32, String) {
        let folder = (file as NSString).deletingLastPathComponent
        let name = (file as NSString).lastPathComponent
        do {
            return try Termination.createTemporaryFile(template: (folder.isEmpty ? "." : folder) + "/." + name + "." + suffix + "-XXXXXX",
                                                       destination: destination)
        } catch let error as OutputError {
            throw LiveError(error.description)
        }
    }

    /// Removes the spools and the unfinished file (the old file, if any, stays).
    public func discard() {
        for (_, spool) in spools {
            close(spool.fd)
            Termination.discardTemporaryFile(spool.path)
        }
        spools.removeAll()
        if let temporary { Termination.discardTemporaryFile(temporary) }
        temporary = nil
    }

    /// The spool files now (for tests and messages).
    public var spoolPaths: [String] { spools.keys.sorted().compactMap { spools[$0]?.path } }

    /// The size the capture's sub-buffers really have, known once its instance exists
    /// (a kernel can use sub-buffers larger than a page); before the first page only.
    public func setPageSize(_ size: Int) throws {
        guard size > 0 else { throw LiveError("a ring-buffer sub-buffer size of \(size) bytes cannot be recorded") }
        guard spools.isEmpty || size == pageSize else {
            throw LiveError("the sub-buffer size of \(path) cannot change once pages were spooled")
        }
        pageSize = size
    }

    /// The first spooling error (disk full), after which pages are no longer taken.
    public var failure: String? { spoolFailure }

    /// Appends one raw sub-buffer of `cpu`, padded to the page size (the kernel's own pages are).
    /// Returns false once the spool cannot be written (the capture should stop).
    @discardableResult
    public func append(page: [UInt8], cpu: Int) -> Bool {
        guard spoolFailure == nil else { return false }
        if spools[cpu] == nil {
            do {
                let (fd, spool) = try Self.temporaryFile(beside: target, suffix: "cpu\(cpu)", for: path)
                spools[cpu] = (fd, 0, spool)
            } catch {
                spoolFailure = "cannot create a spool file for CPU \(cpu) next to \(path): \(error)"
                return false
            }
        }
        var padded = page
        if padded.count < pageSize { padded += [UInt8](repeating: 0, count: pageSize - padded.count) }
        let spool = spools[cpu]!
        if let problem = writeAll(spool.fd, padded) {
            // A partly written page is no page: cut the spool back to whole pages.
            _ = ftruncate(spool.fd, off_t(spool.pages * pageSize))
            spoolFailure = "writing \(spool.path) failed after \(spool.pages) pages of CPU \(cpu): \(problem)"
            return false
        }
        spools[cpu]!.pages += 1
        return true
    }

    public func pages(cpu: Int) -> Int { spools[cpu]?.pages ?? 0 }

    /// Bytes allocated to the spools and the file, for `spaceLimit`.
    /// (The spools only grow at their end or shrink; the file is counted by what was written
    /// into it, as it fills from the back.)
    private func used() -> Int {
        var total = finalWritten
        for fd in spools.values.map(\.fd) {
            var st = stat()
            if fstat(fd, &st) == 0 { total += Int(st.st_size) }
        }
        return total
    }
    private var finalWritten = 0

    /// pwrite (offset given) or write, failing with ENOSPC past `spaceLimit`.
    private func put(_ fd: Int32, _ p: UnsafeRawPointer, _ count: Int, at offset: off_t? = nil) -> Int {
        if let spaceLimit {
            let room = spaceLimit - used()
            if room < count {
                errno = ENOSPC
                return -1
            }
        }
        let n = offset.map { pwrite(fd, p, count, $0) } ?? write(fd, p, count)
        if fd == finalFD && n > 0 { finalWritten += n }
        return n
    }

    func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> String? {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { put(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                return String(cString: strerror(errno))
            }
            if n == 0 { return "no progress" }
            done += n
        }
        return nil
    }

    /// The page timestamp (its first 8 bytes) of spooled page `index`.
    private func pageTime(_ fd: Int32, _ index: Int, base: off_t = 0) -> UInt64? {
        var ts: UInt64 = 0
        let n = withUnsafeMutableBytes(of: &ts) { pread(fd, $0.baseAddress, 8, base + off_t(index * pageSize)) }
        return n == 8 ? UInt64(littleEndian: ts) : nil
    }

    /// Writes the file: metadata, then every CPU's spooled pages. Returns where it stopped short, if it did.
    ///
    /// When the disk is full, room for the header is made by giving up the newest spooled
    /// pages, and each CPU's pages are moved from the end of its spool backwards (the spool
    /// shrinks as the file grows), so the file needs no more room than the spools had.
    public func finish(metadata: TraceDatMetadata, cpus: Int) throws -> TraceDatTruncation? {
        guard metadata.pageSize == pageSize else {
            throw LiveError("the pages of \(path) are \(pageSize) bytes but its header would say \(metadata.pageSize)")
        }
        guard let temporary else { throw LiveError("\(path) was already written or discarded") }
        do {
            let truncation = try writeFile(metadata: metadata, cpus: cpus, into: temporary)
            if let failure = Termination.commitTemporaryFile(temporary, to: target) {
                throw LiveError("cannot put \(path) in place: \(String(cString: strerror(failure)))")
            }
            self.temporary = nil
            let folder = (target as NSString).deletingLastPathComponent
            let dir = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dir >= 0 { _ = fsync(dir); close(dir) }
            return truncation
        } catch {
            discard()
            throw error
        }
    }

    private func writeFile(metadata: TraceDatMetadata, cpus: Int, into file: String) throws -> TraceDatTruncation? {
        let header = Self.header(metadata, cpus: cpus)
        let fd = open(file, O_RDWR | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw LiveError("cannot write \(path): \(String(cString: strerror(errno)))") }
        _ = fchmod(fd, mode)
        finalFD = fd
        finalWritten = 0
        defer { close(fd); finalFD = -1 }
        let captured = (0..<cpus).map { pages(cpu: $0) }
        var kept = captured
        var firstKept = [Int](repeating: 0, count: cpus)
        let tableOffset = header.count
        let dataStart = (tableOffset + 16 * cpus + pageSize - 1) / pageSize * pageSize
        var reason: String?
        /// The CPU whose newest kept page is the newest of all: giving up pages from there keeps
        /// the file a prefix in time of the capture on every CPU.
        func newestCPU() -> Int? {
            var best: (cpu: Int, ts: UInt64)?
            for cpu in 0..<cpus where kept[cpu] > 0 {
                let ts = spools[cpu].flatMap { pageTime($0.fd, kept[cpu] - 1) } ?? 0
                if best == nil || ts > best!.ts { best = (cpu, ts) }
            }
            return best?.cpu
        }
        func plan() -> [(offset: UInt64, size: UInt64)] {
            var at = UInt64(dataStart)
            return (0..<cpus).map { cpu in
                let size = UInt64((kept[cpu] - firstKept[cpu]) * pageSize)
                defer { at += UInt64(kept[cpu] * pageSize) }
                return (size == 0 ? 0 : at + UInt64(firstKept[cpu] * pageSize), size)
            }
        }
        while true {
            var head = header + Self.table(plan())
            head += [UInt8](repeating: 0, count: dataStart - head.count)
            guard let problem = writeAll(fd, head) else { break }
            let full = errno == ENOSPC || errno == EDQUOT
            _ = ftruncate(fd, 0)
            _ = lseek(fd, 0, SEEK_SET)
            finalWritten = 0
            guard full, kept.contains(where: { $0 > 0 }) else {
                throw LiveError("cannot write the header of \(path): \(problem); nothing usable was written")
            }
            reason = "the disk was full"
            // The newest pages go first, as many as the header lacks room for (and one more:
            // file systems count in blocks).
            var free = 0
            if let spaceLimit { free = spaceLimit - used() } else {
                var st = statvfs()
                if fstatvfs(fd, &st) == 0 { free = Int(st.f_bavail) * Int(st.f_frsize) }
            }
            for _ in 0..<max(1, (head.count - free + pageSize - 1) / pageSize + 1) {
                guard let newest = newestCPU() else { break }
                kept[newest] -= 1
                if let spool = spools[newest] { _ = ftruncate(spool.fd, off_t(kept[newest] * pageSize)) }
            }
        }
        if reason != nil, let newest = newestCPU() {
            // The header took the last free bytes: moving the pages needs one page of room.
            kept[newest] -= 1
            if let spool = spools[newest] { _ = ftruncate(spool.fd, off_t(kept[newest] * pageSize)) }
            let table = Self.table(plan())
            _ = table.withUnsafeBytes { pwrite(fd, $0.baseAddress, table.count, off_t(tableOffset)) }
        }
        var keptTimes: [(UInt64?, UInt64?)] = Array(repeating: (nil, nil), count: cpus)
        for cpu in 0..<cpus {
            guard let spool = spools[cpu] else { continue }
            if kept[cpu] > 0 { keptTimes[cpu] = (pageTime(spool.fd, 0), pageTime(spool.fd, kept[cpu] - 1)) }
            let base = plan()[cpu].offset
            let from = moveSpool(spool.fd, pages: kept[cpu], to: fd, at: off_t(base))
            if from.first > 0 {
                reason = reason ?? from.problem ?? "short write"
                firstKept[cpu] = from.first
                keptTimes[cpu].0 = from.first < kept[cpu] ? pageTime(fd, from.first, base: off_t(base)) : nil
                if from.first >= kept[cpu] { kept[cpu] = 0; firstKept[cpu] = 0 }
            }
            close(spool.fd)
            Termination.discardTemporaryFile(spool.path)
            spools[cpu] = nil
        }
        guard let reason else {
            _ = fsync(fd)
            return nil
        }
        let table = Self.table(plan())
        let n = table.withUnsafeBytes { pwrite(fd, $0.baseAddress, table.count, off_t(tableOffset)) }
        if n != table.count {
            throw LiveError("disk full while writing \(path), and its CPU table could not be corrected: the file is not usable")
        }
        _ = fsync(fd)
        var losses: [TraceDatTruncation.Loss] = []
        for cpu in 0..<cpus where kept[cpu] - firstKept[cpu] < captured[cpu] {
            losses.append(.init(cpu: cpu, captured: captured[cpu], kept: kept[cpu] - firstKept[cpu],
                                keptFrom: keptTimes[cpu].0, keptUntil: keptTimes[cpu].1))
        }
        return TraceDatTruncation(losses: losses, reason: reason)
    }

    /// Moves `pages` from the spool into the file, last page first, shrinking the spool
    /// behind each page: on a full disk the move needs one page of room, no more.
    /// Returns the first page that made it (0: all did).
    private func moveSpool(_ from: Int32, pages: Int, to: Int32, at: off_t) -> (first: Int, problem: String?) {
        let batchPages = 64
        var buffer = [UInt8](repeating: 0, count: pageSize * batchPages)
        var end = pages
        while end > 0 {
            let start = max(0, end - batchPages)
            let want = (end - start) * pageSize
            let got = buffer.withUnsafeMutableBytes { pread(from, $0.baseAddress, want, off_t(start * pageSize)) }
            guard got == want else { return (end, "cannot read back the spooled pages: \(String(cString: strerror(errno)))") }
            for page in stride(from: end - 1, through: start, by: -1) {
                let local = (page - start) * pageSize
                var done = 0
                while done < pageSize {
                    let n = buffer.withUnsafeBytes {
                        put(to, $0.baseAddress! + local + done, pageSize - done, at: at + off_t(page * pageSize + done))
                    }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 {
                        return (page + 1, n < 0 && errno == ENOSPC ? "the disk was full" : (n < 0 ? String(cString: strerror(errno)) : "no progress"))
                    }
                    done += n
                }
                _ = ftruncate(from, off_t(page * pageSize))
            }
            end = start
        }
        return (0, nil)
    }

    static func table(_ plan: [(offset: UInt64, size: UInt64)]) -> [UInt8] {
        var out: [UInt8] = []
        for entry in plan { out.le(entry.offset); out.le(entry.size) }
        return out
    }

    static func header(_ m: TraceDatMetadata, cpus: Int) -> [UInt8] {
        var out: [UInt8] = [0x17, 0x08, 0x44] + Array("tracing".utf8) + Array("6".utf8) + [0]
        out.append(0) // little endian: the host writes its own numbers
        out.append(UInt8(m.longSize))
        out.le(UInt32(m.pageSize))
        out += Array("header_page".utf8) + [0]
        out.le(UInt64(m.headerPage.count)); out += m.headerPage
        out += Array("header_event".utf8) + [0]
        out.le(UInt64(m.headerEvent.count)); out += m.headerEvent
        out.le(UInt32(m.ftraceFormats.count))
        for f in m.ftraceFormats { out.le(UInt64(f.count)); out += f }
        out.le(UInt32(m.systems.count))
        for system in m.systems {
            out += Array(system.name.utf8) + [0]
            out.le(UInt32(system.formats.count))
            for f in system.formats { out.le(UInt64(f.count)); out += f }
        }
        out.le(UInt32(m.kallsyms.count)); out += m.kallsyms
        out.le(UInt32(m.printkFormats.count)); out += m.printkFormats
        out.le(UInt64(m.cmdlines.count)); out += m.cmdlines
        out.le(UInt32(cpus))
        out += Array("options  ".utf8) + [0]
        func option(_ id: UInt16, _ payload: [UInt8]) {
            out.le(id); out.le(UInt32(payload.count)); out += payload
        }
        // Ids from trace-cmd's enum: CPUSTAT 2, TRACECLOCK 4, UNAME 5.
        if let clock = m.traceClock { option(4, Array(clock.utf8) + [0]) }
        if let uname = m.uname { option(5, Array(uname.utf8) + [0]) }
        for (cpu, stats) in m.cpuStats.enumerated() { option(2, Array("CPU: \(cpu)\n\(stats)".utf8) + [0]) }
        out.le(UInt16(0))
        out += Array("flyrecord".utf8) + [0]
        return out
    }
}

extension Array where Element == UInt8 {
    mutating func le<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }
}
