import Foundation

/// The `key=value` body of a dma/swiotlb/iommu event in ftrace text, in the
/// kernel's own rendering or libtraceevent's `[FAILED TO PARSE]` raw form.
/// One value is reused line after line (`parse`), so a line costs no allocation; its
/// fields are views of the line's bytes, valid until the next line.
struct TextPayload {
    private enum Part: UInt8 {
        /// Leading words before the first `key=` (the device name, "IOMMU:", ...).
        case positional
        case field
        /// Words after the key=value part ("FORCE", "[TRUNCATED]").
        case trailing
    }

    /// A word of the line: bytes `start..<end` of `text`, a field's `=` at `eq`.
    private struct Token {
        var start: Int
        var eq: Int
        var end: Int
        var part: Part
    }

    private var text = TextBytes.empty
    private var tokens: [Token] = []
    /// libtraceevent could not print the event and showed raw fields instead.
    private(set) var raw = false

    init() {}

    init(_ text: TextBytes) { parse(text) }

    mutating func parse(_ line: TextBytes) {
        tokens.removeAll(keepingCapacity: true)
        raw = false
        var s = line
        if s.hasPrefix("[FAILED TO PARSE]") {
            raw = true
            s = s.dropFirst(17)
        }
        text = s
        var sawField = false
        var i = 0
        while true {
            while i < s.count, s[i] == 0x20 { i += 1 }
            guard i < s.count else { break }
            // A token runs to the next space outside `[...]` / `{...}` (ARRAY[c0, 68] has spaces).
            let start = i
            var depth = 0
            var eq = -1
            while i < s.count {
                let c = s[i]
                // Letters, digits and most punctuation end nothing: one test for all of them.
                if c > 0x3D && c != 0x5B && c != 0x5D && c != 0x7B && c != 0x7D {
                    i += 1
                    continue
                }
                if c == 0x5B || c == 0x7B {
                    depth += 1
                } else if c == 0x5D || c == 0x7D {
                    depth = max(0, depth - 1)
                } else if c == 0x20 && depth == 0 {
                    break
                } else if c == 0x3D && eq < 0 {
                    eq = i
                }
                i += 1
            }
            let part: Part
            if eq > start {
                part = .field
                sawField = true
            } else {
                part = sawField ? .trailing : .positional
            }
            tokens.append(Token(start: start, eq: eq, end: i, part: part))
        }
    }

    private func bytes(_ t: Token) -> TextBytes { text.slice(t.start, t.end) }

    /// Leading words before the first `key=`.
    var positional: [TextBytes] { tokens.filter { $0.part == .positional }.map(bytes) }

    /// The value of `key`; the last one when a line repeats a key.
    func field(_ key: StaticString) -> TextBytes? {
        let n = key.utf8CodeUnitCount
        var i = tokens.count - 1
        while i >= 0 {
            let t = tokens[i]
            if t.part == .field, t.eq - t.start == n, Self.same(text.base + t.start, key.utf8Start, n) {
                return text.slice(t.eq + 1, t.end)
            }
            i -= 1
        }
        return nil
    }

    /// Field names are a few bytes: compared here rather than through a call to memcmp.
    @inline(__always)
    private static func same(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        var i = 0
        while i < n {
            if a[i] != b[i] { return false }
            i += 1
        }
        return true
    }

    func hasTrailing(_ word: StaticString) -> Bool {
        tokens.contains { $0.part == .trailing && bytes($0) == word }
    }

    var device: String? {
        deviceBytes?.string
    }

    /// The device name's bytes, for a caller that interns names.
    var deviceBytes: TextBytes? {
        if let d = field("device") { return d }
        if let d = field("dev_name") { return d }
        // "dev_name: 0000:00:03.0 ..." (swiotlb) or "0000:00:03.0 dir=..." (dma)
        for t in tokens where t.part == .positional && text[t.end - 1] != 0x3A { return bytes(t) }
        return nil
    }

    /// Hex whether or not it has 0x (the kernel prints %llx bare). In the raw form
    /// libtraceevent prints a field by its type, not by the event's format string
    /// (tep_print_field_content): pointers and `long` types as 0x..., every other unsigned
    /// field (dma_addr_t, phys_addr_t, size_t, u64) as %llu, so a bare number there is decimal.
    func hex(_ key: StaticString) -> UInt64? {
        guard let v = field(key) else { return nil }
        if raw && !v.hasPrefix("0x") { return v.integer(UInt64.self) }
        return Self.parseHex(v)
    }

    /// Decimal unless prefixed with 0x.
    func number(_ key: StaticString) -> UInt64? {
        guard let v = field(key) else { return nil }
        if v.hasPrefix("0x") { return v.dropFirst(2).integer(UInt64.self, radix: 16) }
        return v.integer(UInt64.self)
    }

    func signedNumber(_ key: StaticString) -> Int64? {
        guard let v = field(key) else { return nil }
        if v.hasPrefix("0x") { return v.dropFirst(2).integer(UInt64.self, radix: 16).map { Int64(bitPattern: $0) } }
        return v.integer(Int64.self)
    }

    static func parseHex(_ v: TextBytes) -> UInt64? {
        let digits = v.hasPrefix("0x") || v.hasPrefix("0X") ? v.dropFirst(2) : v
        return digits.integer(UInt64.self, radix: 16)
    }

    var direction: DMADirection? {
        guard let v = field("dir") else { return nil }
        if let n = v.integer(UInt64.self) { return DMADirection(kernelValue: n) }
        if v == "TO_DEVICE" { return .toDevice }
        if v == "FROM_DEVICE" { return .fromDevice }
        if v == "BIDIRECTIONAL" { return .bidirectional }
        return DMADirection(name: v.string)
    }

    var attrs: DMAAttributes? {
        guard let v = field("attrs") else { return [] }
        if v.isEmpty { return [] }
        if let n = v.integer(UInt64.self) { return DMAAttributes(rawValue: n) }
        return DMAAttributes(text: v.substring)
    }

    /// `{0x1,0x2}` (kernel __print_array), `[1, 2]`, or raw `ARRAY[c0, 68, ...]`
    /// little-endian bytes of `elementSize`-wide elements.
    func array(_ key: StaticString, elementSize: Int) -> [UInt64]? {
        guard let v = field(key) else { return nil }
        return Self.parseArray(v.substring, elementSize: elementSize)
    }

    /// `%p` in text is hashed unless the hash-ptr option was off; a kernel
    /// pointer always has its top bits set, a hash never does.
    func pointer(_ key: StaticString) -> TracedPointer {
        guard let v = field(key) else { return .absent }
        if v == "(nil)" || v == "0" || v == "0x0" { return .value(0) }
        if v.contains("ptrval") { return .hashed(nil) }
        guard let x = Self.parseHex(v) else { return .hashed(nil) }
        if x == 0 { return .value(0) }
        return x >> 32 == 0 ? .hashed(x) : .value(x)
    }


    static func parseArray(_ v: Substring, elementSize: Int) -> [UInt64]? {
        if v.hasPrefix("ARRAY[") && v.hasSuffix("]") {
            let bytes = v.dropFirst(6).dropLast().split(separator: ",").map { $0.trimmingSpaces }
            var values: [UInt8] = []
            values.reserveCapacity(bytes.count)
            for b in bytes where !b.isEmpty {
                guard let byte = UInt8(b, radix: 16) else { return nil }
                values.append(byte)
            }
            guard elementSize > 0, values.count % elementSize == 0 else { return nil }
            var out: [UInt64] = []
            var i = 0
            while i < values.count {
                var x: UInt64 = 0
                for k in 0..<elementSize { x |= UInt64(values[i + k]) << (8 * UInt64(k)) }
                out.append(x)
                i += elementSize
            }
            return out
        }
        guard let first = v.first, first == "{" || first == "[", let last = v.last, last == "}" || last == "]" else {
            return nil
        }
        let inner = v.dropFirst().dropLast()
        if inner.trimmingSpaces.isEmpty { return [] }
        var out: [UInt64] = []
        for part in inner.split(separator: ",") {
            let p = part.trimmingSpaces
            if p.hasPrefix("0x") {
                guard let x = UInt64(p.dropFirst(2), radix: 16) else { return nil }
                out.append(x)
            } else {
                guard let x = UInt64(p) else { return nil }
                out.append(x)
            }
        }
        return out
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self.drop(while: { $0 == " " })
        while s.last == " " { s = s.dropLast() }
        return s
    }
}

/// Builds a normalized event kind from a text payload.
enum TextEventDecoder {
    // swiftlint:disable:next cyclomatic_complexity function_body_length
    static func kind(_ known: KnownEvent, _ p: TextPayload) -> DMAEventKind? {
        let direction = p.direction
        let attrs = p.attrs ?? []
        switch known {
        case .mapSingle(let api):
            guard let dma = p.hex("dma_addr"), let size = p.number("size"), let phys = p.hex("phys_addr") else { return nil }
            return .map(SingleMapEvent(api: api.resolved(by: attrs), physAddr: phys, dmaAddr: dma, size: size,
                                       direction: direction, attrs: attrs))
        case .unmapSingle(let api):
            guard let dma = p.hex("dma_addr") ?? p.hex("addr"), let size = p.number("size") else { return nil }
            return .unmap(SingleUnmapEvent(api: api.resolved(by: attrs), dmaAddr: dma, size: size, direction: direction, attrs: attrs))
        case .mapSG:
            guard let dma = p.array("dma_addrs", elementSize: 8),
                  let lengths = p.array("sizes", elementSize: 4) ?? p.array("lengths", elementSize: 4),
                  let phys = p.array("phys_addrs", elementSize: 8) else { return nil }
            let (nents, ents) = sgCounts(p, physCount: phys.count, dmaCount: dma.count)
            let truncated = p.hasTrailing("[TRUNCATED]") || p.field("ents").map { $0.hasSuffix("[TRUNCATED]") } == true
                || (p.number("truncated") ?? 0) != 0
            return .mapSG(SGMapEvent(inputEntries: nents, mappedEntries: ents, physAddrs: phys, dmaAddrs: dma,
                                     lengths: lengths, truncated: truncated, direction: direction, attrs: attrs))
        case .mapSGError:
            // The kernel labels the physical addresses "dma_addrs" in this event's text.
            let phys = p.array("phys_addrs", elementSize: 8) ?? p.array("dma_addrs", elementSize: 8) ?? []
            return .mapSGError(SGMapErrorEvent(physAddrs: phys, error: p.signedNumber("err") ?? 0,
                                               direction: direction, attrs: attrs))
        case .unmapSG:
            guard let phys = p.array("phys_addrs", elementSize: 8) ?? p.array("addrs", elementSize: 8) else { return nil }
            return .unmapSG(SGUnmapEvent(physAddrs: phys, direction: direction, attrs: attrs))
        case .syncSingle(let target):
            guard let dma = p.hex("dma_addr"), let size = p.number("size") else { return nil }
            return .sync(SyncEvent(target: target, scatterGather: false, dmaAddrs: [dma], lengths: [size],
                                   direction: direction))
        case .syncSG(let target):
            guard let dma = p.array("dma_addrs", elementSize: 8),
                  let lengths = p.array("sizes", elementSize: 4) ?? p.array("lengths", elementSize: 4) else { return nil }
            return .sync(SyncEvent(target: target, scatterGather: true, dmaAddrs: dma, lengths: lengths,
                                   direction: direction))
        case .alloc(let api), .allocError(let api):
            guard let size = p.number("size") else { return nil }
            var failed = false
            if case .allocError = known { failed = true }
            let phys = p.array("phys_addrs", elementSize: 8) ?? p.hex("phys_addr").map { [$0] } ?? []
            return .alloc(AllocEvent(api: api, cpuAddr: p.pointer("virt_addr"), dmaAddr: p.hex("dma_addr") ?? 0,
                                     size: size, direction: direction, attrs: attrs, physAddrs: phys, failed: failed))
        case .free(let api):
            guard let size = p.number("size") else { return nil }
            let phys = p.array("phys_addrs", elementSize: 8) ?? p.hex("phys_addr").map { [$0] } ?? []
            return .free(FreeEvent(api: api, cpuAddr: p.pointer("virt_addr"), dmaAddr: p.hex("dma_addr") ?? 0,
                                   size: size, direction: direction, attrs: attrs, physAddrs: phys))
        case .bounce:
            guard let orig = p.hex("dev_addr"), let size = p.number("size") else { return nil }
            let forced = p.hasTrailing("FORCE") || p.number("force") == 1
            return .bounce(BounceEvent(origAddr: orig, size: size, dmaMask: p.hex("dma_mask") ?? 0, forced: forced))
        case .iommuMap:
            guard let iova = p.hex("iova"), let size = p.number("size") else { return nil }
            return .iommuMap(IOMMUMapEvent(iova: iova, physAddr: p.hex("paddr") ?? 0, size: size))
        case .iommuUnmap:
            guard let iova = p.hex("iova"), let size = p.number("size") else { return nil }
            return .iommuUnmap(IOMMUUnmapEvent(iova: iova, size: size, unmappedSize: p.number("unmapped_size") ?? size))
        case .iommuFault:
            guard let iova = p.hex("iova") else { return nil }
            let driver = p.positional.first.map { $0.hasPrefix("IOMMU:") ? $0.dropFirst(6) : $0 }?.string ?? ""
            return .iommuFault(IOMMUFaultEvent(driver: driver, iova: iova, flags: p.signedNumber("flags") ?? 0))
        case .iommuGroup(let change):
            return .iommuGroup(IOMMUGroupEvent(change: change, groupID: p.signedNumber("groupID") ?? p.signedNumber("gid")))
        case .print, .bprint, .kernelStack:
            return nil
        }
    }

    /// `nents=1/1 ents=1/1` (capped arrays: kept/full), `nents=3` (older), or raw `full_nents=`.
    private static func sgCounts(_ p: TextPayload, physCount: Int, dmaCount: Int) -> (Int, Int) {
        func full(_ v: Substring?) -> Int? {
            guard let v else { return nil }
            let cleaned = v.hasSuffix("[TRUNCATED]") ? v.dropLast("[TRUNCATED]".count) : v
            if let slash = cleaned.firstIndex(of: "/") { return Int(cleaned[cleaned.index(after: slash)...]) }
            return Int(cleaned)
        }
        let nents = full(p.field("full_nents")?.substring) ?? full(p.field("nents")?.substring) ?? physCount
        let ents = full(p.field("full_ents")?.substring) ?? full(p.field("ents")?.substring) ?? dmaCount
        return (nents, ents)
    }

    /// Device for iommu fault text: "IOMMU:driver device iova=...".
    static func device(for known: KnownEvent, _ p: TextPayload) -> String? {
        deviceBytes(for: known, p)?.string
    }

    static func deviceBytes(for known: KnownEvent, _ p: TextPayload) -> TextBytes? {
        switch known {
        case .iommuMap, .iommuUnmap: return nil
        case .iommuFault: return p.positional.count >= 2 ? p.positional[1] : nil
        case .iommuGroup: return p.field("device")
        default: return p.deviceBytes
        }
    }
}
