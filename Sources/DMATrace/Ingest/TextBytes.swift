import Foundation

/// A view of some bytes of one text line, valid while the buffer it points into lives (the
/// reader's chunk, or a line's own UTF-8 for `perf script`). The text syntax is ASCII, so it
/// is scanned byte by byte: Substring and Character scanning, and a String per line and per
/// field, were most of the text path's time. Strings are made only for what an event keeps.
struct TextBytes {
    let base: UnsafePointer<UInt8>
    let count: Int

    init(base: UnsafePointer<UInt8>, count: Int) {
        self.base = base
        self.count = count
    }

    init(_ buffer: UnsafeRawBufferPointer) {
        // An empty buffer may have no address; any valid pointer will do for zero bytes.
        base = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? TextBytes.emptyBase
        count = buffer.count
    }

    init(_ buffer: UnsafeBufferPointer<UInt8>) {
        base = buffer.baseAddress ?? TextBytes.emptyBase
        count = buffer.count
    }

    /// A static string's bytes: always valid, never written.
    static var emptyBase: UnsafePointer<UInt8> { ("" as StaticString).utf8Start }
    static var empty: TextBytes { TextBytes(base: emptyBase, count: 0) }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    subscript(i: Int) -> UInt8 { base[i] }

    var first: UInt8? { count > 0 ? base[0] : nil }
    var last: UInt8? { count > 0 ? base[count - 1] : nil }

    /// Bytes `from..<to`.
    @inline(__always)
    func slice(_ from: Int, _ to: Int) -> TextBytes { TextBytes(base: base + from, count: to - from) }
    func dropFirst(_ n: Int = 1) -> TextBytes { n >= count ? slice(count, count) : slice(n, count) }
    func dropLast(_ n: Int = 1) -> TextBytes { n >= count ? slice(0, 0) : slice(0, count - n) }
    func prefix(_ n: Int) -> TextBytes { slice(0, min(n, count)) }

    func droppingLeading(_ byte: UInt8) -> TextBytes {
        var i = 0
        while i < count, base[i] == byte { i += 1 }
        return slice(i, count)
    }

    func droppingTrailing(_ byte: UInt8) -> TextBytes {
        var n = count
        while n > 0, base[n - 1] == byte { n -= 1 }
        return slice(0, n)
    }

    func firstIndex(of byte: UInt8, from start: Int = 0) -> Int? {
        var i = start
        while i < count {
            if base[i] == byte { return i }
            i += 1
        }
        return nil
    }

    func lastIndex(of byte: UInt8) -> Int? {
        var i = count - 1
        while i >= 0 {
            if base[i] == byte { return i }
            i -= 1
        }
        return nil
    }

    func contains(_ byte: UInt8) -> Bool { firstIndex(of: byte) != nil }

    func hasPrefix(_ s: StaticString) -> Bool {
        let n = s.utf8CodeUnitCount
        return n <= count && memcmp(base, s.utf8Start, n) == 0
    }

    func hasSuffix(_ s: StaticString) -> Bool {
        let n = s.utf8CodeUnitCount
        return n <= count && memcmp(base + (count - n), s.utf8Start, n) == 0
    }

    static func == (a: TextBytes, s: StaticString) -> Bool {
        a.count == s.utf8CodeUnitCount && memcmp(a.base, s.utf8Start, a.count) == 0
    }

    static func != (a: TextBytes, s: StaticString) -> Bool { !(a == s) }

    func equals(_ other: TextBytes) -> Bool {
        count == other.count && memcmp(base, other.base, count) == 0
    }

    func equals(_ bytes: [UInt8]) -> Bool {
        bytes.count == count && bytes.withUnsafeBufferPointer { memcmp($0.baseAddress!, base, count) == 0 }
    }

    /// As `String(decoding:as:)`: invalid UTF-8 becomes U+FFFD, exactly as when lines were Strings.
    var string: String { String(decoding: UnsafeBufferPointer(start: base, count: count), as: UTF8.self) }
    var substring: Substring { Substring(string) }
    var array: [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }

    /// As `T(text, radix:)` of the standard library: an optional sign, then at least one digit
    /// (either case for hex), nothing else; nil on overflow.
    func integer<T: FixedWidthInteger>(_: T.Type = T.self, radix: UInt64 = 10) -> T? {
        guard T.bitWidth <= 64 else { return nil }
        var i = 0
        var negative = false
        if count > 0, base[0] == 0x2B || base[0] == 0x2D {
            negative = base[0] == 0x2D
            i = 1
        }
        guard i < count else { return nil }
        var magnitude: UInt64 = 0
        while i < count {
            let b = base[i]
            let d: UInt64
            switch b {
            case 0x30...0x39: d = UInt64(b - 0x30)
            case 0x61...0x7A: d = UInt64(b - 0x61 + 10)
            case 0x41...0x5A: d = UInt64(b - 0x41 + 10)
            default: return nil
            }
            guard d < radix else { return nil }
            let (m, o1) = magnitude.multipliedReportingOverflow(by: radix)
            let (a, o2) = m.addingReportingOverflow(d)
            guard !o1, !o2 else { return nil }
            magnitude = a
            i += 1
        }
        if negative {
            if magnitude == 0 { return 0 }
            guard T.isSigned, magnitude <= UInt64(T.max) + 1 else { return nil }
            return T(truncatingIfNeeded: 0 &- magnitude)
        }
        guard magnitude <= UInt64(T.max) else { return nil }
        return T(truncatingIfNeeded: magnitude)
    }

    /// Whether every byte is an ASCII digit (and there is at least one).
    var isDigits: Bool {
        guard count > 0 else { return false }
        for i in 0..<count where base[i] < 0x30 || base[i] > 0x39 { return false }
        return true
    }
}

/// Strings for bytes that repeat on nearly every line (task names, device names): made once,
/// then found again by comparing bytes. Bounded, so a corrupted or hostile text with a new name
/// on every line only costs a String each, never memory.
struct TextInterner {
    private var slots: [(bytes: [UInt8], string: String)]
    private let mask: Int

    /// `capacity` a power of two.
    init(capacity: Int = 256) {
        slots = Array(repeating: ([], ""), count: capacity)
        mask = capacity - 1
    }

    /// `key` picks the slot (the pid for task names); the bytes decide.
    mutating func string(_ bytes: TextBytes, key: Int) -> String {
        let slot = key & mask
        if slots[slot].bytes.count == bytes.count, bytes.equals(slots[slot].bytes) {
            return slots[slot].string
        }
        let s = bytes.string
        slots[slot] = (bytes.array, s)
        return s
    }

    /// The slot from the bytes themselves (device names).
    mutating func string(_ bytes: TextBytes) -> String {
        var h: UInt32 = 2_166_136_261
        for i in 0..<bytes.count { h = (h ^ UInt32(bytes[i])) &* 16_777_619 }
        return string(bytes, key: Int(h))
    }
}

extension TextBytes {
    /// A static string's bytes (names the parser supplies itself).
    init(static s: StaticString) {
        self.init(base: s.utf8Start, count: s.utf8CodeUnitCount)
    }

    /// Whether `needle` occurs anywhere.
    func contains(_ needle: StaticString) -> Bool {
        let n = needle.utf8CodeUnitCount
        guard n <= count else { return false }
        if n == 0 { return true }
        var i = 0
        while i + n <= count {
            if base[i] == needle.utf8Start[0], memcmp(base + i, needle.utf8Start, n) == 0 { return true }
            i += 1
        }
        return false
    }
}
