/// Drawn once per process (generic types cannot have static stored properties).
let addressMapSeed = UInt64.random(in: .min ... .max)

/// An address mixed with the process's seed by the splitmix64/murmur3 finalizer: the hash
/// of every address-keyed table in the replay (see AddressMap for why seeded).
@inline(__always)
func seededAddressHash(_ key: UInt64, seed: UInt64) -> UInt64 {
    var z = key ^ seed
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// A hash table keyed by a 64-bit address, for the replay's hot tables (the interval
/// index's buckets, tombstones, pending bounces).
///
/// Swift's Dictionary hashes every key with SipHash (about 20 ns for a UInt64), which was
/// the largest single cost of replaying a map/unmap pair. Here a key is mixed with a
/// per-process random seed by the splitmix64/murmur3 finalizer (a few cycles): addresses
/// a trace chose to collide under a fixed hash would turn every probe into a scan, and
/// without the seed they cannot be chosen. Open addressing with linear probing and
/// backward-shift deletion (no tombstone slots, so lookups never slow down as entries come
/// and go). swift-collections has no such table.
struct AddressMap<Value> {
    /// A key with its occupancy, together: a probe reads one cache line per slot it passes
    /// (keys and occupancy in two arrays cost two), and, apart from the values, never
    /// retains a value it passes over.
    private struct Key {
        var key: UInt64
        var filled: Bool
    }

    private var keys: [Key]
    private var slots: [Value?]
    private var shift: UInt64
    private let seed: UInt64
    private(set) var count = 0

    init() { self.init(capacityLog2: 4) }

    private init(capacityLog2: UInt64, seed: UInt64 = addressMapSeed) {
        self.seed = seed
        let n = 1 << Int(capacityLog2)
        keys = Array(repeating: Key(key: 0, filled: false), count: n)
        slots = Array(repeating: nil, count: n)
        shift = 64 - capacityLog2
    }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    private func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: seededAddressHash(key, seed: seed) >> shift)
    }

    /// The slot holding `key`, or the empty slot where it would go.
    @inline(__always)
    private func find(_ key: UInt64) -> (index: Int, found: Bool) {
        let mask = keys.count - 1
        var i = home(key)
        while true {
            let k = keys[i]
            if !k.filled { return (i, false) }
            if k.key == key { return (i, true) }
            i = (i + 1) & mask
        }
    }

    subscript(key: UInt64) -> Value? {
        get {
            let (i, found) = find(key)
            return found ? slots[i] : nil
        }
        set {
            if let newValue { updateValue(newValue, forKey: key) } else { removeValue(forKey: key) }
        }
    }

    func contains(_ key: UInt64) -> Bool { find(key).found }

    /// The slot for a new key, growing the table first when it is three quarters full.
    private mutating func claim(_ key: UInt64, at index: Int) -> Int {
        var i = index
        if (count + 1) * 4 > keys.count * 3 {
            grow()
            i = find(key).index
        }
        count += 1
        keys[i] = Key(key: key, filled: true)
        return i
    }

    /// Takes `value` over: storing a caller's last copy moves it instead of retaining it again.
    /// Returns the value it replaced.
    @discardableResult
    mutating func updateValue(_ value: consuming Value, forKey key: UInt64) -> Value? {
        var (i, found) = find(key)
        if !found { i = claim(key, at: i) }
        var old: Value? = value
        swap(&old, &slots[i])
        return old
    }

    /// Runs `body` on the value for `key` in place (inserting `defaultValue()` first when
    /// absent), so a stored array is appended to without being copied.
    mutating func modify<R>(_ key: UInt64, default defaultValue: @autoclosure () -> Value,
                            _ body: (inout Value) -> R) -> R {
        var (i, found) = find(key)
        if !found {
            i = claim(key, at: i)
            slots[i] = defaultValue()
        }
        return body(&slots[i]!)
    }

    /// Runs `body` on the value for `key` in place if present; nil if absent.
    mutating func modifyIfPresent<R>(_ key: UInt64, _ body: (inout Value) -> R) -> R? {
        let (i, found) = find(key)
        guard found else { return nil }
        return body(&slots[i]!)
    }

    @discardableResult
    mutating func removeValue(forKey key: UInt64) -> Value? {
        let (i, found) = find(key)
        guard found else { return nil }
        return vacate(i)
    }

    /// Removes `key`'s entry when `condition` holds for its value, and returns that value.
    @discardableResult
    mutating func removeValue(forKey key: UInt64, if condition: (Value) -> Bool) -> Value? {
        let (i, found) = find(key)
        guard found, condition(slots[i]!) else { return nil }
        return vacate(i)
    }

    @discardableResult
    private mutating func vacate(_ index: Int) -> Value? {
        var old: Value? = nil
        swap(&old, &slots[index])
        keys[index].filled = false
        count -= 1
        // Backward-shift: pull later entries of the probe run into the hole (moved, not copied).
        let mask = keys.count - 1
        var hole = index
        var i = (index + 1) & mask
        while keys[i].filled {
            let h = home(keys[i].key)
            // Move the entry unless its home lies cyclically within (hole, i].
            if (i - h) & mask >= (i - hole) & mask {
                keys[hole] = keys[i]
                slots.swapAt(hole, i)
                keys[i].filled = false
                hole = i
            }
            i = (i + 1) & mask
        }
        return old
    }

    mutating func removeAll() {
        self = AddressMap()
    }

    private mutating func grow() {
        var bigger = AddressMap(capacityLog2: 64 - shift + 1, seed: seed)
        let mask = bigger.keys.count - 1
        for j in keys.indices where keys[j].filled {
            var i = bigger.home(keys[j].key)
            while bigger.keys[i].filled { i = (i + 1) & mask }
            bigger.keys[i] = keys[j]
            swap(&bigger.slots[i], &slots[j])
        }
        bigger.count = count
        self = bigger
    }

    /// Every entry, in no particular order.
    var entries: [(key: UInt64, value: Value)] {
        keys.indices.compactMap { keys[$0].filled ? (keys[$0].key, slots[$0]!) : nil }
    }

    var values: [Value] { slots.compactMap { $0 } }
}
