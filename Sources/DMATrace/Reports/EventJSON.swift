import Foundation

/// The JSON form of one normalized event (NDJSON in `events --json`, and the
/// evidence of findings). Addresses are hex strings: JSON numbers lose u64s.
public struct EventJSON: Codable, Sendable {
    public var timestamp: Double
    public var cpu: Int32
    public var pid: Int32?
    public var task: String?
    public var device: String?
    public var event: String
    public var details: String
    public var args: [String: ArgValue]
    public var stack: [String]?

    public enum ArgValue: Codable, Sendable {
        case string(String)
        case int(Int64)
        case bool(Bool)
        case list([String])

        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let i = try? c.decode(Int64.self) { self = .int(i) }
            else if let s = try? c.decode(String.self) { self = .string(s) }
            else { self = .list(try c.decode([String].self)) }
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .string(let s): try c.encode(s)
            case .int(let i): try c.encode(i)
            case .bool(let b): try c.encode(b)
            case .list(let l): try c.encode(l)
            }
        }
    }

    public init(_ e: DMAEvent) {
        timestamp = e.seconds
        cpu = e.cpu
        pid = e.pid >= 0 ? e.pid : nil
        task = e.pid >= 0 ? e.task : nil
        device = e.device
        event = e.kind.name
        details = e.kind.details
        stack = e.stack?.frames
        args = Self.args(of: e.kind)
    }

    static func args(of kind: DMAEventKind) -> [String: ArgValue] {
        func h(_ v: UInt64) -> ArgValue { .string(hex(v)) }
        func hl(_ v: [UInt64]) -> ArgValue { .list(v.map(hex)) }
        func dl(_ v: [UInt64]) -> ArgValue { .list(v.map { String($0) }) }
        func dir(_ d: DMADirection?) -> ArgValue { .string(d?.description ?? "INVALID") }
        func n(_ v: UInt64) -> ArgValue { .int(Int64(clamping: v)) }
        switch kind {
        case .map(let m):
            return ["api": .string(m.api.rawValue), "phys": h(m.physAddr), "dma": h(m.dmaAddr), "size": n(m.size),
                    "dir": dir(m.direction), "attrs": .string(m.attrs.description)]
        case .unmap(let u):
            return ["api": .string(u.api.rawValue), "dma": h(u.dmaAddr), "size": n(u.size), "dir": dir(u.direction),
                    "attrs": .string(u.attrs.description)]
        case .mapSG(let s):
            return ["nents": .int(Int64(s.inputEntries)), "ents": .int(Int64(s.mappedEntries)),
                    "phys": hl(s.physAddrs), "dma": hl(s.dmaAddrs), "lengths": dl(s.lengths),
                    "truncated": .bool(s.truncated), "dir": dir(s.direction), "attrs": .string(s.attrs.description)]
        case .mapSGError(let e):
            return ["phys": hl(e.physAddrs), "err": .int(e.error), "dir": dir(e.direction), "attrs": .string(e.attrs.description)]
        case .unmapSG(let u):
            return ["phys": hl(u.physAddrs), "dir": dir(u.direction), "attrs": .string(u.attrs.description)]
        case .sync(let s):
            return ["target": .string(s.target.rawValue), "sg": .bool(s.scatterGather), "dma": hl(s.dmaAddrs),
                    "lengths": dl(s.lengths), "dir": dir(s.direction)]
        case .alloc(let a):
            return ["api": .string(a.api.rawValue), "cpu_addr": .string(a.cpuAddr.text), "dma": h(a.dmaAddr),
                    "size": n(a.size), "attrs": .string(a.attrs.description), "phys": hl(a.physAddrs), "failed": .bool(a.failed)]
        case .free(let f):
            return ["api": .string(f.api.rawValue), "cpu_addr": .string(f.cpuAddr.text), "dma": h(f.dmaAddr),
                    "size": n(f.size), "attrs": .string(f.attrs.description), "phys": hl(f.physAddrs)]
        case .bounce(let b):
            return ["orig_phys": h(b.origAddr), "size": n(b.size), "dma_mask": h(b.dmaMask), "forced": .bool(b.forced)]
        case .iommuMap(let m):
            return ["iova": h(m.iova), "phys": h(m.physAddr), "size": n(m.size)]
        case .iommuUnmap(let u):
            return ["iova": h(u.iova), "size": n(u.size), "unmapped_size": n(u.unmappedSize)]
        case .iommuFault(let f):
            return ["iova": h(f.iova), "flags": .int(f.flags), "driver": .string(f.driver)]
        case .iommuGroup(let g):
            return g.groupID.map { ["group": .int($0)] } ?? [:]
        case .lostEvents(let count):
            return count.map { ["count": n($0)] } ?? [:]
        case .marker(let text):
            return ["text": .string(text)]
        case .unknown(let name):
            return ["name": .string(name)]
        case .outOfOrder(let kind, let ts, let line):
            return ["late_kind": .string(kind.name), "late_timestamp_ns": n(ts), "line": .int(Int64(line)),
                    "late_details": .string(kind.details)]
        }
    }
}

extension JSONEncoder {
    /// Sorted keys so output is byte-for-byte stable across runs.
    public static func stable(pretty: Bool = false) -> JSONEncoder {
        let e = TerminalSafeJSONEncoder()
        e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}
