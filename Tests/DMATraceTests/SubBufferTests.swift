import CCompression
import CTraceCmd
import Foundation
import Testing
@testable import DMATrace

/// Builds ring-buffer sub-buffers the way kernel/trace/ring_buffer.c writes them
/// (little-endian, 8-byte commit word): event headers of 5-bit type_len and 27-bit
/// time_delta, time extends (30), absolute stamps (31), padding (29), long events (0).
struct PageBuilder {
    static let pageSize = 4096
    static let dataOffset = 16
    var bytes = [UInt8](repeating: 0, count: pageSize)
    var at = 0
    var capacity: Int { Self.pageSize - Self.dataOffset }

    init(timestamp: UInt64) { put64(0, timestamp) }

    mutating func put32(_ offset: Int, _ v: UInt32) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }

    mutating func put64(_ offset: Int, _ v: UInt64) {
        for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }

    mutating func word(_ v: UInt32) {
        put32(Self.dataOffset + at, v)
        at += 4
    }

    func fits(_ n: Int) -> Bool { at + n <= capacity }

    /// A data event; payloads up to 112 bytes use type_len, longer ones array[0].
    mutating func event(delta: UInt32, payload: [UInt8]) {
        let padded = (payload.count + 3) & ~3
        if padded > 0 && padded <= 112 {
            word(UInt32(padded / 4) | (delta << 5))
        } else {
            word(delta << 5)
            word(UInt32(payload.count + 4))
        }
        for (i, b) in payload.enumerated() { bytes[Self.dataOffset + at + i] = b }
        at += padded
    }

    mutating func timeExtend(_ delta: UInt64) {
        word(30 | (UInt32(truncatingIfNeeded: delta & ((1 << 27) - 1)) << 5))
        word(UInt32(truncatingIfNeeded: delta >> 27))
    }

    mutating func absolute(_ ts: UInt64) {
        word(31 | (UInt32(truncatingIfNeeded: ts & ((1 << 27) - 1)) << 5))
        word(UInt32(truncatingIfNeeded: ts >> 27))
    }

    /// A discarded event of `length` bytes after its 8-byte header: its delta still counts.
    /// array[0] counts itself (kernel/trace/ring_buffer.c rb_event_length: array[0] + 4).
    mutating func discarded(delta: UInt32, length: Int) {
        word(29 | (delta << 5))
        word(UInt32(length + 4))
        at += length
    }

    enum Missed { case none, unknown, stored(UInt64) }

    mutating func finish(missed: Missed = .none, commit: Int? = nil) -> [UInt8] {
        var c = UInt64(commit ?? at)
        switch missed {
        case .none: break
        case .unknown: c |= 1 << 31
        case .stored(let n):
            // The kernel stores the count only where it fits (ring_buffer.c rb_get_reader_page).
            c |= 1 << 31
            if Self.dataOffset + at + 8 <= Self.pageSize {
                c |= 1 << 30
                put64(Self.dataOffset + at, n)
            }
        }
        put64(8, c)
        return bytes
    }
}

@Suite struct SubBufferTests {
    static let format = SubBufferFormat(commitSize: 8, bigEndian: false)

    struct Seen: Equatable, CustomStringConvertible {
        var ts: UInt64
        var offset: Int
        var size: Int
        var missed: Int64
        var description: String { "ts=\(ts) at=\(offset) size=\(size) missed=\(missed)" }
    }

    static func ours(_ page: [UInt8]) throws -> [Seen] {
        try page.withUnsafeBytes { raw in
            var cursor = try SubBufferCursor(page: raw, format: format)
            var out: [Seen] = []
            while let r = try cursor.nextRecord() {
                out.append(Seen(ts: r.timestamp, offset: r.data - raw.baseAddress!, size: r.size, missed: r.missedEvents))
            }
            return out
        }
    }

    /// libtraceevent's kbuffer on the same bytes: what libtracecmd's iteration is built on.
    static func kbuffer(_ page: [UInt8]) -> [Seen] {
        var copy = page
        return copy.withUnsafeMutableBytes { raw in
            let kb = kbuffer_alloc(KBUFFER_LSIZE_8, KBUFFER_ENDIAN_LITTLE)!
            defer { kbuffer_free(kb) }
            kbuffer_load_subbuffer(kb, raw.baseAddress)
            var out: [Seen] = []
            var ts: UInt64 = 0
            while let data = kbuffer_read_event(kb, &ts) {
                out.append(Seen(ts: ts, offset: UnsafeRawPointer(data) - UnsafeRawPointer(raw.baseAddress!),
                                size: Int(kbuffer_event_size(kb)), missed: Int64(kbuffer_missed_events(kb))))
                kbuffer_next_event(kb, nil)
            }
            return out
        }
    }

    /// Random but well-formed pages, with chains of time extends, absolute stamps,
    /// discarded events, long events and every kind of lost-event flag.
    static func randomPage(_ rng: inout SplitMix) -> [UInt8] {
        var b = PageBuilder(timestamp: rng.next() >> 8)
        let target = Int(rng.next() % UInt64(b.capacity))
        while b.at < target {
            switch rng.next() % 10 {
            case 0 where b.fits(8):
                // Chains: one to four extends in a row.
                for _ in 0...(rng.next() % 4) where b.fits(8) { b.timeExtend(rng.next() % (1 << 40)) }
            case 1 where b.fits(8):
                b.absolute(rng.next() % (1 << 59))
            case 2:
                let length = Int(rng.next() % 64) * 4
                if b.fits(8 + length) { b.discarded(delta: UInt32(rng.next() % (1 << 27)), length: length) }
            default:
                let size = rng.next() % 3 == 0 ? Int(rng.next() % 400) + 1 : Int(rng.next() % 112) + 1
                let room = ((size + 3) & ~3) + (size > 112 ? 8 : 4)
                guard b.fits(room) else { return b.finish(missed: missed(&rng)) }
                b.event(delta: UInt32(rng.next() % (1 << 27)), payload: (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            }
        }
        return b.finish(missed: missed(&rng))
    }

    static func missed(_ rng: inout SplitMix) -> PageBuilder.Missed {
        switch rng.next() % 4 {
        case 0: .unknown
        case 1: .stored(rng.next() % 100_000)
        default: .none
        }
    }

    @Test func randomPagesDecodeExactlyAsKbufferDoes() throws {
        var rng = SplitMix(seed: 13)
        var events = 0
        for i in 0..<400 {
            let page = Self.randomPage(&rng)
            let expected = Self.kbuffer(page)
            let got = try Self.ours(page)
            events += got.count
            #expect(got == expected, "page \(i): \(got.first { !expected.contains($0) }.map(String.init(describing:)) ?? "count \(got.count) vs \(expected.count)")")
            if got != expected { break }
        }
        #expect(events > 4000)
    }

    @Test func timeExtendChainsAddUp() throws {
        var b = PageBuilder(timestamp: 1_000)
        b.timeExtend(1 << 30)
        b.timeExtend(5)
        b.timeExtend((1 << 35) + 7)
        b.event(delta: 3, payload: [1, 2, 3, 4])
        let got = try Self.ours(b.finish())
        let expected: UInt64 = 1_000 + (1 << 30) + 5 + (1 << 35) + 7 + 3
        #expect(got.map(\.ts) == [expected])
        #expect(got == Self.kbuffer(b.finish()))
    }

    @Test func absoluteStampsKeepTheTopBitsOfTheRunningTime() throws {
        let base: UInt64 = (0x18 << 56) | 123
        var b = PageBuilder(timestamp: base)
        b.absolute(5_000_000)
        b.event(delta: 10, payload: [0, 0, 0, 0])
        let got = try Self.ours(b.finish())
        let expected: UInt64 = (base & (0xf8 << 56)) | 5_000_010
        #expect(got.map(\.ts) == [expected])
    }

    @Test func lostEventsGoToTheFirstRecordOnly() throws {
        var b = PageBuilder(timestamp: 1)
        b.event(delta: 0, payload: [1, 2, 3, 4])
        b.event(delta: 1, payload: [1, 2, 3, 4])
        let stored = try Self.ours(b.finish(missed: .stored(77)))
        #expect(stored.map(\.missed) == [77, 0])
        var u = PageBuilder(timestamp: 1)
        u.event(delta: 0, payload: [1, 2, 3, 4])
        #expect(try Self.ours(u.finish(missed: .unknown)).map(\.missed) == [-1])
        // kbuffer reports the gap only when the first event starts the page.
        var e = PageBuilder(timestamp: 1)
        e.timeExtend(1 << 28)
        e.event(delta: 0, payload: [1, 2, 3, 4])
        let page = e.finish(missed: .stored(5))
        #expect(try Self.ours(page).map(\.missed) == Self.kbuffer(page).map(\.missed))
    }

    func expectDamage(_ page: [UInt8], _ words: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        do {
            _ = try Self.ours(page)
            Issue.record("damaged page accepted", sourceLocation: sourceLocation)
        } catch {
            #expect("\(error)".contains(words), "\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func commitBeyondThePageIsRefused() {
        var b = PageBuilder(timestamp: 1)
        b.event(delta: 0, payload: [1, 2, 3, 4])
        expectDamage(b.finish(commit: 5000), "commit size")
    }

    @Test func eventsRunningPastThePageAreRefused() {
        // A short event whose type_len claims 112 bytes in the last 40 of the page.
        var b = PageBuilder(timestamp: 1)
        b.discarded(delta: 0, length: b.capacity - 40 - 8)
        b.word(28)
        expectDamage(b.finish(commit: b.capacity), "runs past the page")

        var long = PageBuilder(timestamp: 1)
        long.word(0)
        long.word(1 << 20)
        expectDamage(long.finish(commit: 64), "runs past the page")

        var tiny = PageBuilder(timestamp: 1)
        tiny.word(0)
        tiny.word(2)
        expectDamage(tiny.finish(commit: 64), "impossible")

        var ext = PageBuilder(timestamp: 1)
        ext.discarded(delta: 0, length: ext.capacity - 4 - 8)
        ext.word(30)
        expectDamage(ext.finish(commit: ext.capacity), "time extend")
    }

    @Test func storedLostCountBeyondThePageIsRefused() {
        var b = PageBuilder(timestamp: 1)
        b.discarded(delta: 0, length: b.capacity - 4 - 8)
        var page = b.finish()
        page[8 + 3] |= 0xc0
        expectDamage(page, "lost-event count")
    }

    @Test func garbagePagesNeverCrashOrHang() {
        var rng = SplitMix(seed: 7)
        var refused = 0
        for _ in 0..<3000 {
            var page = (0..<PageBuilder.pageSize).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Plausible commit words, so the walk goes deep into the garbage.
            let commit = rng.next() % UInt64(PageBuilder.pageSize) | (rng.next() % 2) << 31 | (rng.next() % 2) << 30
            for i in 0..<8 { page[8 + i] = UInt8(truncatingIfNeeded: commit >> (8 * i)) }
            do {
                let records = try Self.ours(page)
                for r in records { #expect(r.offset >= 16 && r.offset + r.size <= PageBuilder.pageSize) }
            } catch {
                refused += 1
            }
        }
        #expect(refused > 0)
    }
}

/// trace-cmd compresses v7 blocks with ZSTD_compress2 or zlib's compress2
/// (lib/trace-cmd/trace-compress-{zstd,zlib}.c); trace-cmd 3.1.6 here writes only zstd,
/// so the zlib path is checked on blocks made with zlib itself.
@Suite struct DecompressorTests {
    static let page: [UInt8] = (0..<16384).map { UInt8(truncatingIfNeeded: $0 * 7 / 3) }

    @Test func zlibBlocksRoundTrip() throws {
        var bound = compressBound(uLong(Self.page.count))
        var packed = [UInt8](repeating: 0, count: Int(bound))
        #expect(compress2(&packed, &bound, Self.page, uLong(Self.page.count), 6) == Z_OK)
        let block = Array(packed.prefix(Int(bound)))
        let got = try block.withUnsafeBytes { try Decompressor(.zlib).decompress($0, size: Self.page.count).get() }
        #expect(got == Self.page)
        // The stated size must be the real one.
        let short = block.withUnsafeBytes { Decompressor(.zlib).decompress($0, size: Self.page.count - 1) }
        #expect((try? short.get()) == nil)
    }

    @Test func zstdBlocksRoundTrip() throws {
        var packed = [UInt8](repeating: 0, count: ZSTD_compressBound(Self.page.count))
        let n = ZSTD_compress(&packed, packed.count, Self.page, Self.page.count, 3)
        #expect(ZSTD_isError(n) == 0)
        let block = Array(packed.prefix(n))
        let got = try block.withUnsafeBytes { try Decompressor(.zstd).decompress($0, size: Self.page.count).get() }
        #expect(got == Self.page)
    }

    @Test func garbageIsRefusedByBoth() {
        var rng = SplitMix(seed: 5)
        let junk = (0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for algorithm in [Compression.zstd, .zlib] {
            let r = junk.withUnsafeBytes { Decompressor(algorithm).decompress($0, size: 16384) }
            #expect((try? r.get()) == nil, "\(algorithm)")
        }
    }
}
