import Foundation
import Testing
@testable import DMATrace

/// The text path reads lines as bytes; these check that its pieces say exactly what the
/// String-based code they replaced said.
@Suite struct TextBytesTests {
    static func withBytes<T>(_ s: String, _ body: (TextBytes) -> T) -> T {
        var copy = s
        return copy.withUTF8 { body(TextBytes($0)) }
    }

    @Test func integersParseAsTheStandardLibraryParsesThem() {
        let inputs = ["0", "12", "+12", "-0", "-12", "+", "-", "", "0x12", "ff", "FF", "+ff", "-ff", "00012",
                      "18446744073709551615", "18446744073709551616", "9223372036854775807", "9223372036854775808",
                      "-9223372036854775808", "-9223372036854775809", "2147483647", "2147483648", "-2147483648",
                      "-2147483649", "12 ", " 12", "1_2", "１２", "ffffffffffffffff", "10000000000000000", "z"]
        for s in inputs {
            Self.withBytes(s) { b in
                #expect(b.integer(UInt64.self) == UInt64(s), "UInt64 \(s)")
                #expect(b.integer(UInt64.self, radix: 16) == UInt64(s, radix: 16), "UInt64 hex \(s)")
                #expect(b.integer(Int64.self) == Int64(s), "Int64 \(s)")
                #expect(b.integer(Int32.self) == Int32(s), "Int32 \(s)")
                #expect(b.integer(Int.self) == Int(s), "Int \(s)")
            }
        }
    }

    @Test func timestampsAreExact() {
        for (s, ns) in [("12.345678", UInt64(12_345_678_000)), ("0.000001", 1_000), ("7", 7_000_000_000),
                        ("1.123456789", 1_123_456_789)] {
            #expect(Self.withBytes(s) { TextLineParser.parseTimestamp($0) } == ns)
        }
        for s in ["", ".", "1.", "1.1234567890", "1..2", "a.1", "18446744074.0"] {
            #expect(Self.withBytes(s) { TextLineParser.parseTimestamp($0) } == nil, "\(s)")
        }
    }

    /// A field is the last `key=` of that name; brackets keep spaces inside one token.
    @Test func payloadFieldsAndWords() {
        let line = "0000:00:03.0 dir=TO_DEVICE size=4096 size=512 dma_addrs={0x1, 0x2} lengths=ARRAY[00, 10] FORCE [TRUNCATED]"
        Self.withBytes(line) { b in
            let p = TextPayload(b)
            #expect(p.number("size") == 512)
            #expect(p.direction == .toDevice)
            #expect(p.array("dma_addrs", elementSize: 8) == [1, 2])
            #expect(p.array("lengths", elementSize: 2) == [0x1000])
            #expect(p.hasTrailing("FORCE") && p.hasTrailing("[TRUNCATED]"))
            #expect(p.device == "0000:00:03.0")
            #expect(p.field("dma_addr") == nil)
        }
    }

    @Test func theInternerGivesBackTheBytesItWasGiven() {
        var interner = TextInterner(capacity: 4)
        let names = ["kworker/u8:2", "kworker/u8:2-events_unbound", "", "swapper/1", "ksoftirqd/0"]
        for round in 0..<3 {
            for (i, name) in names.enumerated() {
                // Keys collide on purpose: slot 1 holds a different name each time.
                let got = Self.withBytes(name) { interner.string($0, key: round == 2 ? 1 : i) }
                #expect(got == name)
            }
        }
    }

    /// perf script sample lines read from their bytes give the record the String-based parser
    /// gives; the lines that path leaves alone are the others.
    @Test func perfSampleLinesReadAsTheStringParserReadsThem() throws {
        var lines: [String] = []
        for name in ["fi-6.12-iommu.perf.txt", "fi-6.12-plain-g.perf.txt"] {
            let text = try String(contentsOfFile: Fixtures.sample("perf/" + name), encoding: .utf8)
            lines += text.split(separator: "\n", omittingEmptySubsequences: false).prefix(3000).map(String.init)
        }
        lines += ["  task 12 [001] 1.5: dma:dma_map_page: dev x=1 ffffffff81000000 __traceiter+0x5d ([kernel.kallsyms])",
                  "  a b c  77/78 [003]  12.000001:  42  dma:dma_unmap_page: 0000:00:03.0 dir=TO_DEVICE",
                  "  12.000001: dma:dma_map_page: 0000:00:03.0", "nothing here: at all:",
                  "  ta\u{e9}sk 1 [000] 1.0: dma:dma_map_page: x", "\tffffffff81000000 f+0x1 ([kernel.kallsyms])",
                  "LOST 3 events!", "  t 1 [000] 1.0: PERF_RECORD_LOST lost 3", "# comment"]
        var fast = 0
        var tokens: [Range<Int>] = []
        for line in lines {
            var text = line
            let sub = Substring(line)
            text.withUTF8 { buffer in
                let bytes = TextBytes(buffer)
                let slow = PerfScriptLineParser.parse(sub, bytes: bytes)
                guard let quick = PerfScriptLineParser.sampleRecord(bytes, tokens: &tokens) else { return }
                fast += 1
                guard case .record(let r) = slow else {
                    Issue.record("the byte path read a record the String parser did not: \(line)")
                    return
                }
                #expect(quick.task.string == r.task.string && quick.pid == r.pid && quick.cpu == r.cpu, "\(line)")
                #expect(quick.timestamp == r.timestamp && quick.event.string == r.event.string, "\(line)")
                #expect(quick.system?.string == r.system?.string && quick.payload.string == r.payload.string, "\(line)")
                #expect(quick.framesFollow == r.framesFollow)
            }
        }
        #expect(fast > 1000)
    }
}
