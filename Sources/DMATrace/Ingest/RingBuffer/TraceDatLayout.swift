import Foundation

/// Where a trace.dat keeps its ring-buffer pages, read from the file itself
/// (trace-cmd.dat.v6(5), trace-cmd.dat.v7(5)). Only what the page reader needs:
/// the formats and everything else stay with libtraceevent/libtracecmd.
struct TraceDatLayout {
    struct Chunk {
        /// File offset of the compressed bytes.
        let offset: Int
        let compressedSize: Int
        /// Uncompressed size: whole pages.
        let size: Int
    }

    struct CPUData {
        let cpu: Int
        /// File offset and size of the CPU's data (compressed size when compressed).
        let offset: Int
        let size: Int
        /// Compressed data comes in chunks of whole pages; nil when stored as is.
        let chunks: [Chunk]?
    }

    /// Bytes of one metadata text or format, kept alive with the section holding them.
    struct Blob {
        let owner: SectionBytes
        let range: Range<Int>
        var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: owner.bytes[range]) }
        var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    var version = 0
    var bigEndian = false
    /// The recording user space's `long` (the file header's byte), as libtracecmd gives libtraceevent.
    var longSize = 8
    var pageSize = 0
    /// What libtraceevent needs for a `tep` handle: formats by system ("ftrace" first), kallsyms,
    /// printk formats, saved command lines.
    var headerPageBlob: Blob?
    var formats: [(system: String, format: Blob)] = []
    /// kallsyms: in the mapped file (v6, an uncompressed v7 section), or decompressed when first
    /// asked for (a compressed v7 section: megabytes only kernel stacks need, and most traces
    /// have none; decompressing them cost every open 5 ms).
    var kallsyms: Blob? {
        get throws { try kallsymsSection?.blob() }
    }
    /// The file holds symbols (a non-empty kallsyms text), known without decompressing them.
    private(set) var hasKallsyms = false
    private var kallsymsSection: LazyBlob?
    var printkFormats: Blob?
    var commandLines: Blob?
    var uname: String?
    var traceClock: String?
    /// v6: a CPUCOUNT option sets how many entries the flyrecord CPU table has (trace-input.c read_cpu_data).
    private var cpuCountOption: UInt32?
    var compression: Compression = .none
    var headerPage = ""
    var headerEvent = ""
    var cpus: [CPUData] = []
    /// Added to every timestamp: trace-cmd's DATE (µs) and OFFSET options, as libtracecmd
    /// applies them when opened without flags (trace-input.c handle_options).
    var timestampOffset: Int64 = 0
    /// Set when the file needs something only libtracecmd's own data path does
    /// (TSC-to-ns conversion, guest time sync, a latency trace).
    var needsLibrary: String?

    /// Thrown for a file whose structure is damaged; names what is wrong.
    struct Damage: Error, CustomStringConvertible {
        let problem: String
        var description: String { problem }
    }

    static let magic: [UInt8] = [0x17, 0x08, 0x44, 0x74, 0x72, 0x61, 0x63, 0x69, 0x6e, 0x67]

    // trace-cmd's option ids (lib/trace-cmd/include/trace-cmd-local.h, the v7 man page).
    private enum Option: UInt16 {
        case done = 0, date = 1, buffer = 3, traceClock = 4, uname = 5, offset = 7, cpuCount = 8
        case timeShift = 12, tsc2nsec = 14
        case headerInfo = 16, ftraceEvents = 17, eventFormats = 18, kallsyms = 19, printk = 20, cmdlines = 21
        case bufferText = 22
    }

    /// `owner` keeps `file`'s memory alive as long as the layout's blobs point into it.
    static func read(_ file: UnsafeRawBufferPointer, owner: AnyObject? = nil) throws -> TraceDatLayout {
        var layout = TraceDatLayout()
        layout.fileOwner = owner
        try layout.parse(file)
        return layout
    }

    private var fileOwner: AnyObject?

    private mutating func parse(_ file: UnsafeRawBufferPointer) throws {
        guard file.count > 16, Array(file[0..<10]) == Self.magic else { throw Damage(problem: "no trace.dat magic") }
        let plain = ByteReader(bytes: file, swap: false)
        guard let (versionText, afterVersion) = plain.cString(10, limit: 16), let v = Int(versionText) else {
            throw Damage(problem: "unreadable file version")
        }
        version = v
        guard let endian = plain.u8(afterVersion), endian <= 1 else { throw Damage(problem: "unreadable byte order") }
        bigEndian = endian == 1
        guard let long = plain.u8(afterVersion + 1), long == 4 || long == 8 else { throw Damage(problem: "unreadable long size") }
        longSize = Int(long)
        let r = ByteReader(bytes: file, swap: bigEndian != (1.bigEndian == 1))
        guard let page = r.u32(afterVersion + 2), page >= 64, page <= 1 << 20, page & (page - 1) == 0 else {
            throw Damage(problem: "implausible page size")
        }
        pageSize = Int(page)
        var at = afterVersion + 6
        switch version {
        case 6: try parseV6(r, SectionBytes(mapped: file, owner: fileOwner), from: &at)
        case 7: try parseV7(r, from: at)
        default: throw Damage(problem: "file version \(version) is not 6 or 7")
        }
    }

    // MARK: version 6: everything in a fixed order, then "flyrecord" and a table of CPUs

    private mutating func parseV6(_ r: ByteReader, _ file: SectionBytes, from at: inout Int) throws {
        (headerPage, headerEvent) = try headerInfo(r, at: &at, owner: file)
        try readFormats(r, file, at: &at)
        setKallsyms(try Self.sized(r, file, at: &at, width: 4, what: "kallsyms"))
        printkFormats = try Self.sized(r, file, at: &at, width: 4, what: "printk formats")
        commandLines = try Self.sized(r, file, at: &at, width: 8, what: "saved command lines")
        func skip(count width: Int, what: String) throws -> UInt64 {
            guard let n = width == 4 ? r.u32(at).map(UInt64.init) : r.u64(at) else { throw Damage(problem: "\(what) cut short") }
            at += width
            return n
        }
        let cpuCount = try skip(count: 4, what: "the CPU count")
        guard cpuCount > 0, cpuCount <= 4096 else { throw Damage(problem: "implausible CPU count \(cpuCount)") }
        var label = try tenBytes(r, at: &at)
        if label == "options  " {
            while true {
                guard let id = r.u16(at) else { throw Damage(problem: "options cut short") }
                at += 2
                if id == Option.done.rawValue { break }
                guard let size = r.u32(at), let data = r.slice(at + 4, Int(size)) else {
                    throw Damage(problem: "option \(id) runs past the end of the file")
                }
                at += 4 + Int(size)
                noteOption(id, ByteReader(bytes: data, swap: r.swap))
            }
            label = try tenBytes(r, at: &at)
        }
        guard label == "flyrecord" else {
            needsLibrary = label == "latency  " ? "a latency trace (text, no ring-buffer pages)" : nil
            if needsLibrary != nil { return }
            throw Damage(problem: "neither flyrecord nor latency data after the header")
        }
        let entries = Int(cpuCountOption ?? UInt32(cpuCount))
        guard entries > 0, entries <= 4096 else { throw Damage(problem: "implausible CPU count \(entries)") }
        for cpu in 0..<entries {
            guard let offset = r.u64(at), let size = r.u64(at + 8) else { throw Damage(problem: "CPU table cut short") }
            at += 16
            try addCPU(cpu: cpu, offset: offset, size: size, fileSize: r.count, chunked: false, r)
        }
    }

    /// A size (4 or 8 bytes) and that many bytes.
    private static func sized(_ r: ByteReader, _ owner: SectionBytes, at: inout Int, width: Int, what: String) throws -> Blob {
        guard let n = width == 4 ? r.u32(at).map(UInt64.init) : r.u64(at) else { throw Damage(problem: "\(what) cut short") }
        guard n <= UInt64(r.count - at - width) else { throw Damage(problem: "\(what) runs past the end of the file") }
        let start = at + width
        at = start + Int(n)
        return Blob(owner: owner, range: start..<at)
    }

    /// The ftrace formats (a count, then sized formats), then the event systems
    /// (a count; each a name, a count and sized formats): in v6 one after the other,
    /// in v7 in two sections of the same layout.
    private mutating func readFtraceFormats(_ r: ByteReader, _ owner: SectionBytes, at: inout Int) throws {
        guard let count = r.u32(at), count < 1 << 16 else { throw Damage(problem: "implausible ftrace format count") }
        at += 4
        for _ in 0..<count { formats.append(("ftrace", try Self.sized(r, owner, at: &at, width: 8, what: "an ftrace format"))) }
    }

    private mutating func readEventFormats(_ r: ByteReader, _ owner: SectionBytes, at: inout Int) throws {
        guard let systems = r.u32(at), systems < 1 << 16 else { throw Damage(problem: "implausible event system count") }
        at += 4
        for _ in 0..<systems {
            guard let (name, after) = r.cString(at) else { throw Damage(problem: "unreadable event system name") }
            at = after
            guard let events = r.u32(at), events < 1 << 16 else { throw Damage(problem: "implausible event count") }
            at += 4
            for _ in 0..<events { formats.append((name, try Self.sized(r, owner, at: &at, width: 8, what: "an event format"))) }
        }
    }

    private mutating func readFormats(_ r: ByteReader, _ owner: SectionBytes, at: inout Int) throws {
        try readFtraceFormats(r, owner, at: &at)
        try readEventFormats(r, owner, at: &at)
    }

    private func tenBytes(_ r: ByteReader, at: inout Int) throws -> String {
        guard let s = r.slice(at, 10) else { throw Damage(problem: "header cut short") }
        at += 10
        return String(decoding: s.prefix(9), as: UTF8.self)
    }

    private mutating func headerInfo(_ r: ByteReader, at: inout Int, owner: SectionBytes) throws -> (String, String) {
        func labelled(_ label: String) throws -> Blob {
            guard let (name, after) = r.cString(at, limit: 32), name == label,
                  let size = r.u64(after), size < 1 << 20, r.slice(after + 8, Int(size)) != nil else {
                throw Damage(problem: "\(label) missing or cut short")
            }
            at = after + 8 + Int(size)
            return Blob(owner: owner, range: (after + 8)..<at)
        }
        let page = try labelled("header_page")
        headerPageBlob = page
        return (page.text, try labelled("header_event").text)
    }

    // MARK: version 7: sections found through chains of options

    private mutating func parseV7(_ r: ByteReader, from start: Int) throws {
        guard let (name, afterName) = r.cString(start, limit: 64), let (_, afterVersion) = r.cString(afterName, limit: 64) else {
            throw Damage(problem: "unreadable compression header")
        }
        switch name {
        case "none": compression = .none
        case "zstd": compression = .zstd
        case "zlib": compression = .zlib
        default: throw Damage(problem: "unknown compression \"\(name)\"")
        }
        guard var next = r.u64(afterVersion) else { throw Damage(problem: "no options offset") }
        let decompressor = Decompressor(compression)
        var headerInfoOffset: UInt64?
        /// Offsets of the sections libtraceevent needs, by section id.
        var metadata: [UInt16: UInt64] = [:]
        var foundBuffer = false
        var bufferClock: String?
        var seen = Set<UInt64>()
        while next != 0 {
            guard seen.insert(next).inserted, seen.count < 1000 else { throw Damage(problem: "options sections form a loop") }
            let (id, data) = try section(r, at: next, decompressor)
            guard id == Option.done.rawValue else { throw Damage(problem: "options offset points at section \(id)") }
            let o = ByteReader(bytes: data.bytes, swap: r.swap)
            next = 0
            var at = 0
            while at < o.count {
                guard let id = o.u16(at), let size = o.u32(at + 2), let body = o.slice(at + 6, Int(size)) else {
                    throw Damage(problem: "an option runs past its section")
                }
                at += 6 + Int(size)
                let option = ByteReader(bytes: body, swap: r.swap)
                switch id {
                case Option.done.rawValue:
                    guard let n = option.u64(0) else { throw Damage(problem: "options end without a next offset") }
                    next = n
                    at = o.count
                case Option.headerInfo.rawValue:
                    headerInfoOffset = option.u64(0)
                case Option.ftraceEvents.rawValue, Option.eventFormats.rawValue, Option.kallsyms.rawValue,
                     Option.printk.rawValue, Option.cmdlines.rawValue:
                    if let o = option.u64(0) { metadata[id] = o }
                case Option.buffer.rawValue:
                    // Only the top instance (empty name): what tracecmd_read_next_data iterates.
                    if let (instance, afterName) = option.cString(8), instance.isEmpty, !foundBuffer {
                        foundBuffer = true
                        if traceClock == nil, let (clock, _) = option.cString(afterName), !clock.isEmpty { bufferClock = clock }
                        try parseBuffer(option, r)
                    }
                case Option.bufferText.rawValue:
                    if let (instance, _) = option.cString(8), instance.isEmpty {
                        needsLibrary = "a latency trace (text, no ring-buffer pages)"
                    }
                default:
                    noteOption(id, option)
                }
            }
            // `o` points into `data`'s memory.
            withExtendedLifetime(data) {}
        }
        guard let headerInfoOffset else { throw Damage(problem: "no header info section") }
        let (headerID, header) = try section(r, at: headerInfoOffset, decompressor)
        guard headerID == Option.headerInfo.rawValue else { throw Damage(problem: "header info offset points at section \(headerID)") }
        var at = 0
        (headerPage, headerEvent) = try headerInfo(ByteReader(bytes: header.bytes, swap: r.swap), at: &at, owner: header)
        if traceClock == nil { traceClock = bufferClock }
        // Same layouts as v6, one section each (trace-cmd.dat.v7(5)).
        if let offset = metadata[Option.kallsyms.rawValue], let size = try compressedSize(r, at: offset) {
            metadata[Option.kallsyms.rawValue] = nil
            // Its 4-byte length and the text; checked as v6's when decompressed.
            hasKallsyms = size > 4
            let layout = self
            kallsymsSection = LazyBlob {
                let bytes = try layout.section(of: Option.kallsyms.rawValue, r, at: offset, Decompressor(layout.compression))
                var at = 0
                return try Self.sized(ByteReader(bytes: bytes.bytes, swap: r.swap), bytes, at: &at, width: 4, what: "kallsyms")
            }
        }
        for (id, offset) in metadata.sorted(by: { $0.key < $1.key }) {
            let bytes = try section(of: id, r, at: offset, decompressor)
            let b = ByteReader(bytes: bytes.bytes, swap: r.swap)
            var at = 0
            switch id {
            case Option.ftraceEvents.rawValue: try readFtraceFormats(b, bytes, at: &at)
            case Option.eventFormats.rawValue: try readEventFormats(b, bytes, at: &at)
            case Option.kallsyms.rawValue: setKallsyms(try Self.sized(b, bytes, at: &at, width: 4, what: "kallsyms"))
            case Option.printk.rawValue: printkFormats = try Self.sized(b, bytes, at: &at, width: 4, what: "printk formats")
            default: commandLines = try Self.sized(b, bytes, at: &at, width: 8, what: "saved command lines")
            }
        }
        if needsLibrary != nil { return }
        guard foundBuffer else { throw Damage(problem: "no flyrecord buffer for the top instance") }
    }

    /// BUFFER option: section offset, name, clock, page size, CPU count, then (cpu, offset, size) each.
    private mutating func parseBuffer(_ b: ByteReader, _ r: ByteReader) throws {
        guard let sectionOffset = b.u64(0), let (_, afterName) = b.cString(8), let (_, afterClock) = b.cString(afterName),
              let page = b.u32(afterClock), let count = b.u32(afterClock + 4) else {
            throw Damage(problem: "flyrecord buffer option cut short")
        }
        guard Int(page) == pageSize else { throw Damage(problem: "buffer page size \(page) differs from the file's \(pageSize)") }
        guard count <= 4096 else { throw Damage(problem: "implausible CPU count \(count)") }
        guard sectionOffset <= UInt64(r.count - 16), let flags = r.u16(Int(sectionOffset) + 2) else {
            throw Damage(problem: "flyrecord section lies beyond the end of the file")
        }
        let chunked = flags & 1 != 0
        var at = afterClock + 8
        var entries: [(Int, UInt64, UInt64)] = []
        for _ in 0..<count {
            guard let cpu = b.u32(at), let offset = b.u64(at + 4), let size = b.u64(at + 12) else {
                throw Damage(problem: "flyrecord CPU table cut short")
            }
            guard cpu < 4096 else { throw Damage(problem: "implausible CPU id \(cpu)") }
            at += 20
            entries.append((Int(cpu), offset, size))
        }
        for (cpu, offset, size) in entries.sorted(by: { $0.0 < $1.0 }) {
            guard !cpus.contains(where: { $0.cpu == cpu }) else { throw Damage(problem: "CPU \(cpu) has two data blocks") }
            try addCPU(cpu: cpu, offset: offset, size: size, fileSize: r.count, chunked: chunked, r)
        }
    }

    private mutating func addCPU(cpu: Int, offset: UInt64, size: UInt64, fileSize: Int, chunked: Bool, _ r: ByteReader) throws {
        guard offset <= UInt64(fileSize), size <= UInt64(fileSize) - offset else {
            throw Damage(problem: "CPU \(cpu)'s data (\(size) bytes at \(offset)) runs past the end of the file (\(fileSize) bytes): truncated?")
        }
        var chunks: [Chunk]?
        if chunked && size > 0 {
            // trace-cmd's stated size leaves out the 4-byte chunk count in front
            // (trace-compress.c tracecmd_compress_copy_from counts only the chunks).
            let end = min(UInt64(fileSize), offset + size + 4)
            chunks = try Self.chunks(r, at: Int(offset), end: Int(end), cpu: cpu, pageSize: pageSize)
        }
        cpus.append(CPUData(cpu: cpu, offset: Int(offset), size: Int(size), chunks: chunks))
    }

    /// The chunk table of compressed CPU data: a count, then (compressed size, size, bytes) each.
    private static func chunks(_ r: ByteReader, at start: Int, end: Int, cpu: Int, pageSize: Int) throws -> [Chunk] {
        guard let count = r.u32(start) else { throw Damage(problem: "CPU \(cpu)'s chunk count is cut short") }
        guard UInt64(count) * 8 <= UInt64(end - start) else { throw Damage(problem: "CPU \(cpu) claims \(count) compressed chunks in \(end - start) bytes") }
        var out: [Chunk] = []
        out.reserveCapacity(Int(count))
        var at = start + 4
        for i in 0..<Int(count) {
            guard at <= end - 8, let z = r.u32(at), let size = r.u32(at + 4), Int(z) <= end - at - 8 else {
                throw Damage(problem: "CPU \(cpu)'s compressed chunk \(i) runs past its data: truncated?")
            }
            guard size > 0, Int(size) % pageSize == 0 || i == count - 1 else {
                throw Damage(problem: "CPU \(cpu)'s compressed chunk \(i) holds \(size) bytes, not whole pages")
            }
            out.append(Chunk(offset: at + 8, compressedSize: Int(z), size: Int(size)))
            at += 8 + Int(z)
        }
        return out
    }

    private mutating func setKallsyms(_ blob: Blob) {
        hasKallsyms = !blob.range.isEmpty
        kallsymsSection = LazyBlob(blob)
    }

    /// The payload of the section option `id` points at, which must be that option's.
    private func section(of id: UInt16, _ r: ByteReader, at offset: UInt64, _ decompressor: Decompressor) throws -> SectionBytes {
        let (got, bytes) = try section(r, at: offset, decompressor)
        guard got == id else { throw Damage(problem: "section offset of option \(id) points at section \(got)") }
        return bytes
    }

    /// The decompressed size a compressed section states, nil for a section stored as is.
    private func compressedSize(_ r: ByteReader, at offset: UInt64) throws -> UInt32? {
        guard offset <= UInt64(r.count), let flags = r.u16(Int(offset) + 2) else {
            throw Damage(problem: "section at byte \(offset) lies beyond the end of the file (\(r.count) bytes): truncated?")
        }
        guard flags & 1 != 0 else { return nil }
        guard let size = r.u32(Int(offset) + 16 + 4) else { throw Damage(problem: "compressed section at byte \(offset) is cut short") }
        return size
    }

    /// A section's payload: (id, bytes), decompressed when flagged.
    private func section(_ r: ByteReader, at offset: UInt64, _ decompressor: Decompressor) throws -> (UInt16, SectionBytes) {
        guard offset <= UInt64(r.count), let id = r.u16(Int(offset)), let flags = r.u16(Int(offset) + 2),
              let size = r.u64(Int(offset) + 8) else {
            throw Damage(problem: "section at byte \(offset) lies beyond the end of the file (\(r.count) bytes): truncated?")
        }
        let body = Int(offset) + 16
        guard size <= UInt64(r.count - body), let raw = r.slice(body, Int(size)) else {
            throw Damage(problem: "section \(id) runs past the end of the file: truncated?")
        }
        guard flags & 1 != 0 else { return (id, SectionBytes(mapped: raw, owner: fileOwner)) }
        let c = ByteReader(bytes: raw, swap: r.swap)
        guard let zsize = c.u32(0), let rsize = c.u32(4), rsize < 1 << 28, let z = c.slice(8, Int(zsize)) else {
            throw Damage(problem: "compressed section \(id) is cut short")
        }
        do {
            return (id, try SectionBytes(decompressing: z, size: Int(rsize), with: decompressor))
        } catch {
            throw Damage(problem: "section \(id) does not decompress (\(error.problem))")
        }
    }

    private mutating func noteOption(_ id: UInt16, _ data: ByteReader) {
        switch id {
        case Option.cpuCount.rawValue:
            cpuCountOption = data.u32(0)
        case Option.uname.rawValue:
            uname = data.cString(0).map(\.0)
        case Option.traceClock.rawValue:
            // "[local] global counter ..." (tracecmd_parse_trace_clock): the bracketed one is in use.
            let text = String(decoding: data.bytes, as: UTF8.self)
            if let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") {
                traceClock = String(text[text.index(after: open)..<close])
            }
        case Option.date.rawValue:
            timestampOffset &+= Self.number(data) &* 1000
        case Option.offset.rawValue:
            timestampOffset &+= Self.number(data)
        case Option.tsc2nsec.rawValue:
            if data.count >= 16 { needsLibrary = "TSC timestamps converted to nanoseconds (TSC2NSEC)" }
        case Option.timeShift.rawValue:
            if data.count >= 16 { needsLibrary = "guest timestamps synchronised with the host (TIME_SHIFT)" }
        default:
            break
        }
    }

    /// strtoll(buf, NULL, 0), as libtracecmd reads DATE and OFFSET.
    private static func number(_ data: ByteReader) -> Int64 {
        var text = [CChar](repeating: 0, count: data.count + 1)
        for i in 0..<data.count { text[i] = CChar(bitPattern: data.bytes[i]) }
        return Int64(strtoll(text, nil, 0))
    }
}

/// A blob made when first asked for, once (also when that fails: the same error each time).
final class LazyBlob: @unchecked Sendable {
    private let lock = NSLock()
    private var make: (() throws -> TraceDatLayout.Blob)?
    private var made: Result<TraceDatLayout.Blob, Error>?

    init(_ make: @escaping () throws -> TraceDatLayout.Blob) { self.make = make }
    init(_ blob: TraceDatLayout.Blob) { made = .success(blob) }

    func blob() throws -> TraceDatLayout.Blob {
        try lock.withLock {
            if made == nil, let make {
                made = Result { try make() }
                self.make = nil
            }
            return made!
        }.get()
    }
}

/// Bytes of a section: in the mapped file, or decompressed and owned here.
final class SectionBytes {
    let bytes: UnsafeRawBufferPointer
    private let storage: UnsafeMutableRawBufferPointer?
    /// The mapped file, for bytes that point into it.
    private let owner: AnyObject?

    init(mapped: UnsafeRawBufferPointer, owner: AnyObject?) {
        bytes = mapped
        storage = nil
        self.owner = owner
    }

    /// Decompresses into memory of its own, neither zeroed first nor copied after (a v7 file's
    /// 8 MB of kallsyms cost both on every open).
    init(decompressing input: UnsafeRawBufferPointer, size: Int, with decompressor: Decompressor) throws(DecompressionError) {
        let s = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 8)
        if let problem = decompressor.decompress(input, into: UnsafeMutableRawBufferPointer(rebasing: s[0..<size])) {
            s.deallocate()
            throw DecompressionError(problem: problem)
        }
        storage = s
        owner = nil
        bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(s)[0..<size])
    }

    deinit { storage?.deallocate() }
}
