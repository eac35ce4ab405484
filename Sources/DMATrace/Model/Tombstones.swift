import DequeModule

/// What happened to an address after its mapping ended: kept, bounded, so a
/// later unmap or sync of it can be told apart from one never mapped.
struct Tombstone {
    enum Reason { case unmapped, mapFailed }
    let reason: Reason
    /// The unmap, or the failed map.
    let event: DMAEvent
    /// The released mapping's map event. Only the events: holding the mapping kept every
    /// released mapping (its segments, history and index entries) alive until its address was
    /// mapped again, and freed it then, from cold memory (switching tombstones off altogether
    /// once saved a quarter of analyze's time, which pointed here).
    let original: DMAEvent?
}

/// The recent past of one device, remembered exactly: every released address until it is
/// older than `window` nanoseconds of trace time or more than `limit` newer ones were
/// released. Never forgotten because another address happened to hash alike, which turned a
/// double unmap into "matches no mapping".
final class TombstoneMemory {
    static let limit = 16_384
    static let window: UInt64 = 600_000_000_000
    private var entries = AddressMap<(t: Tombstone, seq: UInt64)>()
    private var order = Deque<(key: UInt64, seq: UInt64, at: UInt64)>()
    private var nextSeq: UInt64 = 0
    /// Some tombstone was dropped by the bounds: "never seen" is then less certain.
    private(set) var forgotAny = false

    init() {}

    var count: Int { entries.count }

    func get(_ key: UInt64) -> Tombstone? { entries[key]?.t }

    func set(_ key: UInt64, _ t: consuming Tombstone) {
        nextSeq &+= 1
        let now = t.event.timestamp
        order.append((key, nextSeq, now))
        entries.updateValue((t, nextSeq), forKey: key)
        while let oldest = order.first,
              order.count > Self.limit || (now > oldest.at && now - oldest.at > Self.window) {
            order.removeFirst()
            // A key set again later has a newer sequence number: that entry stays.
            if entries.removeValue(forKey: oldest.key, if: { $0.seq == oldest.seq }) { forgotAny = true }
        }
    }

    /// Forgets the tombstone of an unmapped address (a new map of it makes it live again);
    /// a failed map's is kept.
    func removeUnmapped(_ key: UInt64) {
        entries.removeValue(forKey: key) { $0.t.reason == .unmapped }
    }
}
