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
    /// The model's mapping ids issued when it was set (`DMAModel.remember` stamps it): a mapping
    /// with a greater id was made after it (see DMAModel.unmatched, which tells a tombstone
    /// mapped over from a live one).
    var sequence = 0
}

/// The recent past of one device, remembered exactly: every released address until it is
/// older than `window` nanoseconds of trace time or more than `limit` newer ones were
/// released. Never forgotten because another address happened to hash alike, which turned a
/// double unmap into "matches no mapping".
///
/// The tombstones live in the order they were set, in one ring; the table maps an address to
/// its latest place there (a sequence number, a trivial value: probing the table and shifting
/// its entries moves no reference). An address released again moves its table entry to the new
/// place; one mapped again only empties its place and keeps its table entry, which goes when
/// the place falls off the ring's old end or the address is released again: a driver that maps
/// the same buffers over and over then changes a table entry in place on every release
/// (removing it on the map and adding it back on the unmap cost 19% more in the two, nvme's
/// pattern). A table of tombstones beside a queue of keys cost twice the table operations; a
/// Deque as the ring, a copy of the entry (two retains) on every look at its oldest one.
final class TombstoneMemory {
    static let limit = 16_384
    static let window: UInt64 = 600_000_000_000

    private struct Entry {
        let key: UInt64
        let at: UInt64
        /// nil once the address was mapped or released again.
        var tombstone: Tombstone?
        /// The table still points here: the address's latest release, held or emptied by a map.
        var inTable = true
    }

    /// Sequence number s lives at `ring[s & mask]`; `firstSeq ..< endSeq` are in use.
    private var ring: UnsafeMutablePointer<Entry>
    /// One entry to start with: a device that never releases anything (most of a trace with
    /// thousands of devices) costs next to nothing.
    private var mask = 0
    private var firstSeq: UInt64 = 0
    private var endSeq: UInt64 = 0
    /// The sequence number of each address's latest release still in the ring.
    private var places = AddressMap<UInt64>()
    /// Entries holding a tombstone.
    private(set) var count = 0
    /// Some tombstone was dropped by the bounds: "never seen" is then less certain.
    private(set) var forgotAny = false

    init() { ring = .allocate(capacity: mask + 1) }

    deinit {
        for seq in firstSeq..<endSeq { entry(seq).deinitialize(count: 1) }
        ring.deallocate()
    }

    @inline(__always)
    private func entry(_ seq: UInt64) -> UnsafeMutablePointer<Entry> { ring + Int(seq & UInt64(mask)) }

    func get(_ key: UInt64) -> Tombstone? {
        guard let seq = places[key] else { return nil }
        return entry(seq).pointee.tombstone
    }

    func set(_ key: UInt64, _ t: consuming Tombstone) {
        let now = t.event.timestamp
        if let replaced = places.updateValue(endSeq, forKey: key) {
            let old = entry(replaced)
            if old.pointee.tombstone != nil { count -= 1 }
            old.pointee.tombstone = nil
            old.pointee.inTable = false
        }
        count += 1
        if endSeq - firstSeq == UInt64(Self.limit) { dropOldest() }
        if endSeq - firstSeq == UInt64(mask + 1) { grow() }
        entry(endSeq).initialize(to: Entry(key: key, at: now, tombstone: consume t))
        endSeq += 1
        while now > entry(firstSeq).pointee.at && now - entry(firstSeq).pointee.at > Self.window { dropOldest() }
    }

    private func dropOldest() {
        let oldest = entry(firstSeq)
        if oldest.pointee.inTable {
            places.removeValue(forKey: oldest.pointee.key)
            if oldest.pointee.tombstone != nil {
                count -= 1
                forgotAny = true
            }
        }
        oldest.deinitialize(count: 1)
        firstSeq += 1
    }

    /// Twice the room (set() drops the oldest first once `limit` are held); entries keep their
    /// sequence numbers.
    private func grow() {
        let old = ring, oldMask = UInt64(mask)
        mask = mask * 2 + 1
        ring = .allocate(capacity: mask + 1)
        for seq in firstSeq..<endSeq { entry(seq).moveInitialize(from: old + Int(seq & oldMask), count: 1) }
        old.deallocate()
    }

    /// Forgets the tombstone of an unmapped address (a new map of it makes it live again);
    /// a failed map's is kept. The table keeps pointing at the emptied place.
    func removeUnmapped(_ key: UInt64) {
        guard let seq = places[key] else { return }
        let e = entry(seq)
        guard e.pointee.tombstone?.reason == .unmapped else { return }
        e.pointee.tombstone = nil
        count -= 1
    }
}
