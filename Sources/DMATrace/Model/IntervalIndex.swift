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

    private struct Entry {
        let start: UInt64
        let end: UInt64 // exclusive, saturated at UInt64.max
        let value: Value
    }

    private struct SeenKey: Hashable {
        let object: ObjectIdentifier
        let start: UInt64
    }

    private var buckets = AddressMap<[Entry]>()
    private var large: [Entry] = []
    private(set) var count = 0

    init() {}

    static func end(_ start: UInt64, _ length: UInt64) -> UInt64 {
        let (e, overflow) = start.addingReportingOverflow(length)
        return overflow ? UInt64.max : e
    }

    func insert(start: UInt64, length: UInt64, _ value: Value) {
        guard length > 0 else { return }
        let e = Entry(start: start, end: Self.end(start, length), value: value)
        count += 1
        if length > Self.largeThreshold {
            large.append(e)
            return
        }
        for b in (start >> Self.bucketShift)...((e.end - 1) >> Self.bucketShift) {
            buckets.modify(b, default: []) { $0.append(e) }
        }
    }

    func remove(start: UInt64, length: UInt64, _ value: Value) {
        guard length > 0 else { return }
        let end = Self.end(start, length)
        if length > Self.largeThreshold {
            if let i = large.firstIndex(where: { $0.value === value && $0.start == start }) {
                large.remove(at: i)
                count -= 1
            }
            return
        }
        var removed = false
        for b in (start >> Self.bucketShift)...((end - 1) >> Self.bucketShift) {
            // Mutate the bucket in place: copying it out would copy its storage.
            let hit = buckets.modifyIfPresent(b) { list -> Bool in
                guard let i = list.firstIndex(where: { $0.value === value && $0.start == start }) else { return false }
                list.remove(at: i)
                return true
            }
            if hit == true { removed = true }
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
            guard let list = buckets[firstBucket], !list.isEmpty else { return [] }
            return list.compactMap { e in e.start < end && start < e.end ? (start: e.start, end: e.end, value: e.value) : nil }
        }
        var out: [(UInt64, UInt64, Value)] = []
        // A range spanning several buckets is found once per bucket: keep it once.
        var seen = Set<SeenKey>()
        func consider(_ e: Entry) {
            guard e.start < end, start < e.end,
                  seen.insert(SeenKey(object: ObjectIdentifier(e.value), start: e.start)).inserted else { return }
            out.append((e.start, e.end, e.value))
        }
        if lastBucket - firstBucket > 4096 {
            // A huge query: walk the buckets that exist instead of the range.
            for (b, list) in buckets.entries where b >= firstBucket && b <= lastBucket { list.forEach(consider) }
        } else {
            for b in firstBucket...lastBucket { buckets[b]?.forEach(consider) }
        }
        large.forEach(consider)
        return out.map { (start: $0.0, end: $0.1, value: $0.2) }
    }

    /// Every registered value once, in no particular order.
    func allValues() -> [Value] {
        var seen = Set<ObjectIdentifier>()
        var out: [Value] = []
        for list in buckets.values {
            for e in list where seen.insert(ObjectIdentifier(e.value)).inserted { out.append(e.value) }
        }
        for e in large where seen.insert(ObjectIdentifier(e.value)).inserted { out.append(e.value) }
        return out
    }

    /// The first value (in registration order within its bucket) whose range contains
    /// `address` and that passes `match`, without building a result array: the replay's
    /// per-event lookups.
    func first(containing address: UInt64, where match: (Value) -> Bool) -> Value? {
        if large.isEmpty {
            guard let list = buckets[address >> Self.bucketShift] else { return nil }
            for e in list where e.start <= address && address < e.end && match(e.value) { return e.value }
            return nil
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
