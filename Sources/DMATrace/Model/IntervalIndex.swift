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
    /// A bucket-table slot no bucket has used yet.
    private static var vacant: Int32 { .min }

    /// Trivial, so walking a bucket costs no reference counting. A node in use holds one
    /// retain of its value (unless the index was made not to), taken on insert and given back
    /// on remove or deinit.
    ///
    /// Chains are doubly linked and each node knows its bucket's table slot, so a range that
    /// lies in one bucket is removed through the handle its insert returned, without hashing
    /// its bucket again or walking the chain to it (the two were a third of an unmap's index
    /// work).
    private struct Node {
        var start: UInt64
        var end: UInt64 // exclusive, saturated at UInt64.max
        var value: Unmanaged<Value>?
        var next: Int32
        var prev: Int32 = IntervalIndex.none
        /// The bucket's slot in `table`, kept current when the table grows.
        var slot: Int32 = IntervalIndex.none

        func holds(_ v: Value, at s: UInt64) -> Bool {
            start == s && value?.toOpaque() == Unmanaged.passUnretained(v).toOpaque()
        }
    }

    /// One 64 KiB bucket's chain, in an open-addressing table keyed by the bucket number.
    /// An emptied bucket keeps its slot for the next range there (one per 64 KiB of address
    /// space ever used, bounded by memory size, not trace length), so slots are never
    /// deleted and probing needs no tombstones.
    private struct Bucket {
        var key: UInt64
        var head: Int32 // `vacant` for an unused slot
        var tail: Int32
    }

    private struct SeenKey: Hashable {
        let object: UnsafeMutableRawPointer
        let start: UInt64
    }

    // Raw storage: both tables are touched on every map and unmap, and Swift arrays cost a
    // uniqueness check and a bounds check on each access (a fifth of an insert's instructions).
    private var nodes: UnsafeMutablePointer<Node>
    private var nodeCapacity = 16
    /// Nodes ever handed out; those below it are in a chain or on the free list.
    private var nodesUsed = 0
    private var freeNodes = IntervalIndex.none
    private var table: UnsafeMutablePointer<Bucket>
    private var tableShift: UInt64 = 64 - 4
    private var tableMask = 15
    private var bucketsUsed = 0
    private var large: [Node] = []
    private(set) var count = 0
    /// The process's hash seed, held here: reading the global costs a swift_once call each time.
    private let seed = addressMapSeed
    /// Whether a registration holds its value. An index whose every value another index holds
    /// for at least as long (the physical index: every mapping in it is in its device's dma
    /// index, and leaves both together) need not: that is an atomic pair less per map.
    private let retains: Bool

    init(retainingValues: Bool = true) {
        retains = retainingValues
        nodes = .allocate(capacity: nodeCapacity)
        table = Self.makeTable(tableMask + 1)
    }

    @inline(__always)
    private func hold(_ value: Value) -> Unmanaged<Value> {
        retains ? .passRetained(value) : .passUnretained(value)
    }

    @inline(__always)
    private func letGo(_ value: Unmanaged<Value>?) {
        if retains { value?.release() }
    }

    deinit {
        releaseValues()
        nodes.deallocate()
        table.deallocate()
    }

    private static func makeTable(_ n: Int) -> UnsafeMutablePointer<Bucket> {
        let t = UnsafeMutablePointer<Bucket>.allocate(capacity: n)
        t.initialize(repeating: Bucket(key: 0, head: vacant, tail: vacant), count: n)
        return t
    }

    private func releaseValues() {
        for i in 0..<nodesUsed { letGo(nodes[i].value) }
        for n in large { letGo(n.value) }
    }

    func removeAll() {
        releaseValues()
        nodesUsed = 0
        freeNodes = Self.none
        table.deallocate()
        tableShift = 64 - 4
        tableMask = 15
        bucketsUsed = 0
        table = Self.makeTable(tableMask + 1)
        large = []
        count = 0
    }

    static func end(_ start: UInt64, _ length: UInt64) -> UInt64 {
        let (e, overflow) = start.addingReportingOverflow(length)
        return overflow ? UInt64.max : e
    }

    /// The table slot of bucket `b`, or nil if no range was ever registered there.
    @inline(__always)
    private func slot(of b: UInt64) -> Int? {
        var i = Int(truncatingIfNeeded: seededAddressHash(b, seed: seed) >> tableShift)
        while true {
            let e = table[i]
            if e.head == Self.vacant { return nil }
            if e.key == b { return i }
            i = (i + 1) & tableMask
        }
    }

    /// The table slot of bucket `b`, claimed (with an empty chain) if new.
    @inline(__always)
    private func claimSlot(of b: UInt64) -> Int {
        if let i = slot(of: b) { return i }
        if (bucketsUsed + 1) * 4 > (tableMask + 1) * 3 { growTable() }
        var i = Int(truncatingIfNeeded: seededAddressHash(b, seed: seed) >> tableShift)
        while table[i].head != Self.vacant { i = (i + 1) & tableMask }
        table[i] = Bucket(key: b, head: Self.none, tail: Self.none)
        bucketsUsed += 1
        return i
    }

    private func growTable() {
        let old = table, oldSize = tableMask + 1
        tableMask = oldSize * 2 - 1
        tableShift -= 1
        table = Self.makeTable(oldSize * 2)
        for j in 0..<oldSize where old[j].head != Self.vacant {
            var i = Int(truncatingIfNeeded: seededAddressHash(old[j].key, seed: seed) >> tableShift)
            while table[i].head != Self.vacant { i = (i + 1) & tableMask }
            table[i] = old[j]
            var n = old[j].head
            while n != Self.none {
                nodes[Int(n)].slot = Int32(i)
                n = nodes[Int(n)].next
            }
        }
        old.deallocate()
    }

    @inline(__always)
    private func newNode(start: UInt64, end: UInt64, _ value: Value) -> Int32 {
        let node = Node(start: start, end: end, value: hold(value), next: Self.none)
        if freeNodes != Self.none {
            let i = freeNodes
            freeNodes = nodes[Int(i)].next
            nodes[Int(i)] = node
            return i
        }
        if nodesUsed == nodeCapacity {
            precondition(nodeCapacity < Int(Int32.max) / 2, "interval index full")
            let bigger = UnsafeMutablePointer<Node>.allocate(capacity: nodeCapacity * 2)
            bigger.moveInitialize(from: nodes, count: nodesUsed)
            nodes.deallocate()
            nodes = bigger
            nodeCapacity *= 2
        }
        (nodes + nodesUsed).initialize(to: node)
        nodesUsed += 1
        return Int32(nodesUsed - 1)
    }

    /// Registers `value` over [start, start+length). Returns a handle for `remove(handle:...)`
    /// when the range lies in one bucket, else nil.
    @discardableResult
    func insert(start: UInt64, length: UInt64, _ value: Value) -> Handle? {
        guard length > 0 else { return nil }
        let end = Self.end(start, length)
        count += 1
        if length > Self.largeThreshold {
            large.append(Node(start: start, end: end, value: hold(value), next: Self.none))
            return nil
        }
        var b = start >> Self.bucketShift
        let last = (end - 1) >> Self.bucketShift
        let single = b == last
        while true {
            let n = newNode(start: start, end: end, value)
            let s = claimSlot(of: b)
            let tail = table[s].tail
            if tail == Self.none { table[s].head = n } else { nodes[Int(tail)].next = n }
            nodes[Int(n)].prev = tail
            nodes[Int(n)].slot = Int32(s)
            table[s].tail = n
            if b == last { return single ? Handle(node: n) : nil }
            b += 1
        }
    }

    /// Names the node of a one-bucket range. Only a hint: the node may have been removed and
    /// reused since, which `remove(handle:...)` checks.
    struct Handle {
        fileprivate let node: Int32
    }

    /// Removes `value`'s registration at `start` through its insert's handle, or as `remove`
    /// does when the handle no longer names it.
    func remove(handle: Handle?, start: UInt64, length: UInt64, _ value: Value) {
        guard let node = node(named: handle, start: start, length: length, Unmanaged.passUnretained(value)) else {
            return remove(start: start, length: length, value)
        }
        unlink(node)
        count -= 1
    }

    /// The node `handle` names if it still holds `value` registered over exactly this range.
    @inline(__always)
    private func node(named handle: Handle?, start: UInt64, length: UInt64, _ value: Unmanaged<Value>) -> Int32? {
        guard let handle, length <= Self.largeThreshold, Int(handle.node) < nodesUsed else { return nil }
        let n = nodes[Int(handle.node)]
        guard n.start == start, n.value?.toOpaque() == value.toOpaque(), n.end == Self.end(start, length) else { return nil }
        return handle.node
    }

    /// Removes a one-bucket registration through its handle like `remove(handle:...)`, but hands
    /// the index's retain of the value to the caller (`takeRetainedValue()`) instead of giving it
    /// back. False, with nothing removed, when the handle no longer names it or the index does
    /// not retain its values.
    func take(handle: Handle?, start: UInt64, length: UInt64, _ value: Unmanaged<Value>) -> Bool {
        guard retains, let node = node(named: handle, start: start, length: length, value) else { return false }
        unlink(node, givingBack: false)
        count -= 1
        return true
    }

    /// Takes node `i` out of its chain, gives back its value's retain (unless the caller takes
    /// it) and frees it.
    @inline(__always)
    private func unlink(_ i: Int32, givingBack: Bool = true) {
        let n = nodes[Int(i)]
        let s = Int(n.slot)
        if n.prev == Self.none { table[s].head = n.next } else { nodes[Int(n.prev)].next = n.next }
        if n.next == Self.none { table[s].tail = n.prev } else { nodes[Int(n.next)].prev = n.prev }
        if givingBack { letGo(n.value) }
        nodes[Int(i)].value = nil
        nodes[Int(i)].next = freeNodes
        freeNodes = i
    }

    func remove(start: UInt64, length: UInt64, _ value: Value) {
        guard length > 0 else { return }
        let end = Self.end(start, length)
        if length > Self.largeThreshold {
            if let i = large.firstIndex(where: { $0.holds(value, at: start) }) {
                letGo(large.remove(at: i).value)
                count -= 1
            }
            return
        }
        var removed = false
        var b = start >> Self.bucketShift
        let last = (end - 1) >> Self.bucketShift
        while true {
            if let s = slot(of: b) {
                var i = table[s].head
                while i != Self.none && !nodes[Int(i)].holds(value, at: start) { i = nodes[Int(i)].next }
                if i != Self.none {
                    unlink(i)
                    removed = true
                }
            }
            if b == last { break }
            b += 1
        }
        if removed { count -= 1 }
    }

    /// Calls `body` with each node of bucket `b`, in registration order, until it returns false.
    @inline(__always)
    private func walk(_ b: UInt64, _ body: (Node) -> Bool) {
        guard let s = slot(of: b) else { return }
        var i = table[s].head
        while i != Self.none {
            let n = nodes[Int(i)]
            if !body(n) { return }
            i = n.next
        }
    }

    /// Values overlapping [start, start+length), each once, with their registered range.
    func overlapping(start: UInt64, length: UInt64) -> [(start: UInt64, end: UInt64, value: Value)] {
        guard length > 0, count > 0 else { return [] }
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
            for j in 0...tableMask where table[j].head != Self.vacant && table[j].key >= firstBucket && table[j].key <= lastBucket {
                walk(table[j].key, consider)
            }
        } else {
            for b in firstBucket...lastBucket { walk(b, consider) }
        }
        for n in large { _ = consider(n) }
        return out
    }

    /// Calls `body` with each value overlapping [start, start+length), once, with its registered
    /// range. The replay asks on every map and nearly always finds nothing: a one-bucket query
    /// that finds nothing builds no array. Hits are gathered before `body` runs, so `body` may
    /// change the index.
    @inline(__always)
    func forEachOverlapping(start: UInt64, length: UInt64, _ body: (_ start: UInt64, _ end: UInt64, _ value: Value) -> Void) {
        guard length > 0, count > 0 else { return }
        let end = Self.end(start, length)
        let firstBucket = start >> Self.bucketShift
        if firstBucket == (end - 1) >> Self.bucketShift && large.isEmpty {
            var any = false
            walk(firstBucket) { n in
                any = n.start < end && start < n.end
                return !any
            }
            if !any { return }
        }
        for hit in overlapping(start: start, length: length) { body(hit.start, hit.end, hit.value) }
    }

    /// Every registered value once, in no particular order.
    func allValues() -> [Value] {
        var seen = Set<UnsafeMutableRawPointer>()
        var out: [Value] = []
        for n in UnsafeBufferPointer(start: nodes, count: nodesUsed) + large {
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

    /// Calls `body` for each value whose range contains `address`, without building an array
    /// or taking a reference: the index holds each value through the call.
    func forEach(containing address: UInt64, _ body: (Value) -> Void) {
        guard large.isEmpty else {
            for hit in containing(address) { body(hit.value) }
            return
        }
        walk(address >> Self.bucketShift) { n in
            if n.start <= address && address < n.end { n.value!._withUnsafeGuaranteedRef(body) }
            return true
        }
    }

    /// Values whose range contains `address`.
    func containing(_ address: UInt64) -> [(start: UInt64, end: UInt64, value: Value)] {
        overlapping(start: address, length: 1)
    }
}
