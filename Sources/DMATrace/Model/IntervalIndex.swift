/// Finds the values whose address range overlaps a query range without a scan.
///
/// Ranges are registered in every 64 KiB bucket they touch, so a query costs
/// the buckets it spans plus the values found there. Ranges larger than
/// `largeThreshold` live in a short side list instead of thousands of buckets.
/// Memory is proportional to what is registered: live mappings only.
///
/// Each bucket is a chain through one pool of nodes, in registration order, and freed nodes
/// are reused: registering and removing a range costs no allocation and no copy-on-write
/// check (a bucket per Swift array cost both, and an indirection, on every map and unmap).
///
/// A class: the model holds its indexes in class properties, and calling a method on a
/// struct held there copied it (four array retains) on every lookup.
final class IntervalIndex<Value: AnyObject> {
    private static var bucketShift: UInt64 { 16 }
    private static var largeThreshold: UInt64 { 64 << 20 }
    private static var none: Int32 { -1 }

    /// Trivial, so walking a bucket costs no reference counting. A node in use holds one
    /// retain of its value, taken on insert and given back on remove or deinit.
    private struct Node {
        var start: UInt64
        var end: UInt64 // exclusive, saturated at UInt64.max
        var value: Unmanaged<Value>?
        var next: Int32

        func holds(_ v: Value, at s: UInt64) -> Bool {
            start == s && value?.toOpaque() == Unmanaged.passUnretained(v).toOpaque()
        }
    }

    private struct Chain {
        var head: Int32
        var tail: Int32
    }

    private struct SeenKey: Hashable {
        let object: UnsafeMutableRawPointer
        let start: UInt64
    }

    private var nodes: [Node] = []
    private var freeNodes = IntervalIndex.none
    private var buckets = AddressMap<Chain>()
    private var large: [Node] = []
    private(set) var count = 0

    init() {}

    deinit { removeAll() }

    func removeAll() {
        for n in nodes { n.value?.release() }
        for n in large { n.value?.release() }
        nodes = []
        freeNodes = Self.none
        buckets = AddressMap()
        large = []
        count = 0
    }

    static func end(_ start: UInt64, _ length: UInt64) -> UInt64 {
        let (e, overflow) = start.addingReportingOverflow(length)
        return overflow ? UInt64.max : e
    }

    private func newNode(start: UInt64, end: UInt64, _ value: Value) -> Int32 {
        let node = Node(start: start, end: end, value: .passRetained(value), next: Self.none)
        if freeNodes != Self.none {
            let i = freeNodes
            freeNodes = nodes[Int(i)].next
            nodes[Int(i)] = node
            return i
        }
        precondition(nodes.count < Int(Int32.max), "interval index full")
        nodes.append(node)
        return Int32(nodes.count - 1)
    }

    func insert(start: UInt64, length: UInt64, _ value: Value) {
        guard length > 0 else { return }
        let end = Self.end(start, length)
        count += 1
        if length > Self.largeThreshold {
            large.append(Node(start: start, end: end, value: .passRetained(value), next: Self.none))
            return
        }
        for b in (start >> Self.bucketShift)...((end - 1) >> Self.bucketShift) {
            let n = newNode(start: start, end: end, value)
            let tail = buckets.modify(b, default: Chain(head: Self.none, tail: Self.none)) { chain -> Int32 in
                let old = chain.tail
                if old == Self.none { chain.head = n }
                chain.tail = n
                return old
            }
            if tail != Self.none { nodes[Int(tail)].next = n }
        }
    }

    func remove(start: UInt64, length: UInt64, _ value: Value) {
        guard length > 0 else { return }
        let end = Self.end(start, length)
        if length > Self.largeThreshold {
            if let i = large.firstIndex(where: { $0.holds(value, at: start) }) {
                large.remove(at: i).value?.release()
                count -= 1
            }
            return
        }
        var removed = false
        for b in (start >> Self.bucketShift)...((end - 1) >> Self.bucketShift) {
            // An emptied bucket keeps its slot for the next range there: one per 64 KiB of
            // address space ever used, bounded by memory size, not trace length.
            let freed = buckets.modifyIfPresent(b) { chain -> Int32 in
                var prev = Self.none
                var i = chain.head
                while i != Self.none && !nodes[Int(i)].holds(value, at: start) {
                    prev = i
                    i = nodes[Int(i)].next
                }
                guard i != Self.none else { return Self.none }
                let next = nodes[Int(i)].next
                if prev == Self.none { chain.head = next } else { nodes[Int(prev)].next = next }
                if chain.tail == i { chain.tail = prev }
                return i
            } ?? Self.none
            guard freed != Self.none else { continue }
            nodes[Int(freed)].value?.release()
            nodes[Int(freed)].value = nil
            nodes[Int(freed)].next = freeNodes
            freeNodes = freed
            removed = true
        }
        if removed { count -= 1 }
    }

    /// Calls `body` with each node of bucket `b`, in registration order, until it returns false.
    @inline(__always)
    private func walk(_ b: UInt64, _ body: (Node) -> Bool) {
        guard let head = buckets[b]?.head else { return }
        var i = head
        while i != Self.none {
            let n = nodes[Int(i)]
            if !body(n) { return }
            i = n.next
        }
    }

    /// Values overlapping [start, start+length), each once, with their registered range.
    func overlapping(start: UInt64, length: UInt64) -> [(start: UInt64, end: UInt64, value: Value)] {
        guard length > 0 else { return [] }
        let end = Self.end(start, length)
        let firstBucket = start >> Self.bucketShift
        let lastBucket = (end - 1) >> Self.bucketShift
        var out: [(start: UInt64, end: UInt64, value: Value)] = []
        if firstBucket == lastBucket && large.isEmpty {
            // The common case: one bucket, where each registered range appears once.
            walk(firstBucket) { n in
                if n.start < end && start < n.end { out.append((n.start, n.end, n.value!.takeUnretainedValue())) }
                return true
            }
            return out
        }
        // A range spanning several buckets is found once per bucket: keep it once.
        var seen = Set<SeenKey>()
        func consider(_ n: Node) -> Bool {
            if n.start < end, start < n.end, let v = n.value,
               seen.insert(SeenKey(object: v.toOpaque(), start: n.start)).inserted {
                out.append((n.start, n.end, v.takeUnretainedValue()))
            }
            return true
        }
        if lastBucket - firstBucket > 4096 {
            // A huge query: walk the buckets that exist instead of the range.
            for (b, _) in buckets.entries where b >= firstBucket && b <= lastBucket { walk(b, consider) }
        } else {
            for b in firstBucket...lastBucket { walk(b, consider) }
        }
        for n in large { _ = consider(n) }
        return out
    }

    /// Every registered value once, in no particular order.
    func allValues() -> [Value] {
        var seen = Set<UnsafeMutableRawPointer>()
        var out: [Value] = []
        for n in nodes + large {
            if let v = n.value, seen.insert(v.toOpaque()).inserted { out.append(v.takeUnretainedValue()) }
        }
        return out
    }

    /// The first value (in registration order within its bucket) whose range contains
    /// `address` and that passes `match`, without building a result array: the replay's
    /// per-event lookups.
    func first(containing address: UInt64, where match: (Value) -> Bool) -> Value? {
        if large.isEmpty {
            var found: Value?
            walk(address >> Self.bucketShift) { n in
                guard n.start <= address && address < n.end else { return true }
                let v = n.value!.takeUnretainedValue()
                if match(v) { found = v; return false }
                return true
            }
            return found
        }
        return containing(address).first { match($0.value) }?.value
    }

    /// Calls `body` for each value whose range contains `address`, without building an array.
    func forEach(containing address: UInt64, _ body: (Value) -> Void) {
        _ = first(containing: address) { body($0); return false }
    }

    /// Values whose range contains `address`.
    func containing(_ address: UInt64) -> [(start: UInt64, end: UInt64, value: Value)] {
        overlapping(start: address, length: 1)
    }
}
