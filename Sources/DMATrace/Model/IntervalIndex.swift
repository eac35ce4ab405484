/// Finds the values whose address range overlaps a query range without a scan.
///
/// Ranges are registered in every 64 KiB bucket they touch, so a query costs
/// the buckets it spans plus the values found there. Ranges larger than
/// `largeThreshold` live in a short side list instead of thousands of buckets.
/// Memory is proportional to what is registered: live mappings only.
///
/// A class: the model holds its indexes in class properties, and calling a method on a
/// struct held there copied it (four array retains) on every lookup.
final class IntervalIndex<Value: AnyObject> {
    private static var bucketShift: UInt64 { 16 }
    private static var largeThreshold: UInt64 { 64 << 20 }

    /// Trivial, so scanning a bucket costs no reference counting (a strong `value` was
    /// retained and released for every entry a lookup passed over). Each stored entry holds
    /// one retain of its value, taken on insert and given back on remove or deinit.
    private struct Entry {
        let start: UInt64
        let end: UInt64 // exclusive, saturated at UInt64.max
        let value: Unmanaged<Value>

        var object: Value { value.takeUnretainedValue() }
        func holds(_ v: Value, at s: UInt64) -> Bool {
            start == s && value.toOpaque() == Unmanaged.passUnretained(v).toOpaque()
        }
    }

    private struct SeenKey: Hashable {
        let object: UnsafeMutableRawPointer
        let start: UInt64
    }

    private var buckets = AddressMap<[Entry]>()
    private var large: [Entry] = []
    private(set) var count = 0

    init() {}

    deinit { removeAll() }

    func removeAll() {
        for list in buckets.values { for e in list { e.value.release() } }
        for e in large { e.value.release() }
        buckets = AddressMap()
        large = []
        count = 0
    }

    static func end(_ start: UInt64, _ length: UInt64) -> UInt64 {
        let (e, overflow) = start.addingReportingOverflow(length)
        return overflow ? UInt64.max : e
    }

    func insert(start: UInt64, length: UInt64, _ value: Value) {
        guard length > 0 else { return }
        let end = Self.end(start, length)
        count += 1
        if length > Self.largeThreshold {
            large.append(Entry(start: start, end: end, value: .passRetained(value)))
            return
        }
        for b in (start >> Self.bucketShift)...((end - 1) >> Self.bucketShift) {
            let e = Entry(start: start, end: end, value: .passRetained(value))
            buckets.modify(b, default: []) { $0.append(e) }
        }
    }

    func remove(start: UInt64, length: UInt64, _ value: Value) {
        guard length > 0 else { return }
        let end = Self.end(start, length)
        if length > Self.largeThreshold {
            if let i = large.firstIndex(where: { $0.holds(value, at: start) }) {
                large.remove(at: i).value.release()
                count -= 1
            }
            return
        }
        var removed = false
        for b in (start >> Self.bucketShift)...((end - 1) >> Self.bucketShift) {
            // Mutate the bucket in place: copying it out would copy its storage.
            let hit = buckets.modifyIfPresent(b) { list -> Unmanaged<Value>? in
                guard let i = list.firstIndex(where: { $0.holds(value, at: start) }) else { return nil }
                return list.remove(at: i).value
            }
            if let hit = hit ?? nil {
                hit.release()
                removed = true
            }
            // An emptied bucket keeps its storage for the next mapping there: one per
            // 64 KiB of address space ever used, bounded by memory size, not trace length.
        }
        if removed { count -= 1 }
    }

    /// Values overlapping [start, start+length), each once, with their registered range.
    func overlapping(start: UInt64, length: UInt64) -> [(start: UInt64, end: UInt64, value: Value)] {
        guard length > 0 else { return [] }
        let end = Self.end(start, length)
        let firstBucket = start >> Self.bucketShift
        let lastBucket = (end - 1) >> Self.bucketShift
        if firstBucket == lastBucket && large.isEmpty {
            // The common case: one bucket, where each registered range appears once.
            return buckets[borrowing: firstBucket]?.withUnsafeBufferPointer { list in
                var out: [(start: UInt64, end: UInt64, value: Value)] = []
                for e in list where e.start < end && start < e.end { out.append((e.start, e.end, e.object)) }
                return out
            } ?? []
        }
        var out: [(start: UInt64, end: UInt64, value: Value)] = []
        // A range spanning several buckets is found once per bucket: keep it once.
        var seen = Set<SeenKey>()
        func consider(_ e: Entry) {
            guard e.start < end, start < e.end,
                  seen.insert(SeenKey(object: e.value.toOpaque(), start: e.start)).inserted else { return }
            out.append((e.start, e.end, e.object))
        }
        if lastBucket - firstBucket > 4096 {
            // A huge query: walk the buckets that exist instead of the range.
            for (b, list) in buckets.entries where b >= firstBucket && b <= lastBucket { list.forEach(consider) }
        } else {
            for b in firstBucket...lastBucket { buckets[borrowing: b]?.forEach(consider) }
        }
        large.forEach(consider)
        return out
    }

    /// Every registered value once, in no particular order.
    func allValues() -> [Value] {
        var seen = Set<UnsafeMutableRawPointer>()
        var out: [Value] = []
        for list in buckets.values {
            for e in list where seen.insert(e.value.toOpaque()).inserted { out.append(e.object) }
        }
        for e in large where seen.insert(e.value.toOpaque()).inserted { out.append(e.object) }
        return out
    }

    /// The first value (in registration order within its bucket) whose range contains
    /// `address` and that passes `match`, without building a result array: the replay's
    /// per-event lookups.
    func first(containing address: UInt64, where match: (Value) -> Bool) -> Value? {
        if large.isEmpty {
            return buckets[borrowing: address >> Self.bucketShift]?.withUnsafeBufferPointer { list -> Value? in
                for e in list where e.start <= address && address < e.end && match(e.object) { return e.object }
                return nil
            } ?? nil
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
