/// Live mappings and coherent memory over time per device, in a fixed number
/// of buckets whatever the trace's length: when time runs past the last
/// bucket, neighbouring buckets merge and each covers twice as long.
public struct Timeline: Codable, Sendable {
    public struct Bucket: Codable, Sendable {
        public var maxLiveMappings: Int = 0
        public var maxLiveBytes: UInt64 = 0
        public var maxLiveAllocations: Int = 0
        public var maxCoherentBytes: UInt64 = 0
        public var events: UInt64 = 0
        /// The state after the bucket's last event: what the following quiet buckets show.
        public var endLiveMappings: Int = 0
        public var endLiveBytes: UInt64 = 0
        public var endLiveAllocations: Int = 0
        public var endCoherentBytes: UInt64 = 0

        mutating func record(_ p: DeviceProfile) {
            maxLiveMappings = max(maxLiveMappings, p.liveMappings)
            maxLiveBytes = max(maxLiveBytes, p.liveBytes)
            maxLiveAllocations = max(maxLiveAllocations, p.liveAllocations)
            maxCoherentBytes = max(maxCoherentBytes, p.liveCoherentBytes)
            events += 1
            endLiveMappings = p.liveMappings
            endLiveBytes = p.liveBytes
            endLiveAllocations = p.liveAllocations
            endCoherentBytes = p.liveCoherentBytes
        }

        mutating func absorb(_ o: Bucket) {
            maxLiveMappings = max(maxLiveMappings, o.maxLiveMappings)
            maxLiveBytes = max(maxLiveBytes, o.maxLiveBytes)
            maxLiveAllocations = max(maxLiveAllocations, o.maxLiveAllocations)
            maxCoherentBytes = max(maxCoherentBytes, o.maxCoherentBytes)
            events += o.events
            endLiveMappings = o.endLiveMappings
            endLiveBytes = o.endLiveBytes
            endLiveAllocations = o.endLiveAllocations
            endCoherentBytes = o.endCoherentBytes
        }
    }

    public static let bucketCount = 256
    public var origin: UInt64?
    /// Nanoseconds per bucket.
    public var width: UInt64 = 1_000_000
    /// Per device, `bucketCount` buckets; a bucket with no event repeats the state before it.
    public var devices: [String: [Bucket?]] = [:]

    public init() {}

    mutating func note(at ts: UInt64, _ p: DeviceProfile) {
        if origin == nil { origin = ts }
        // An event earlier than the first (time stepped back) belongs to the first bucket;
        // a wrapped offset would coarsen the whole timeline into one bucket.
        let offset = ts > origin! ? ts - origin! : 0
        while offset / width >= UInt64(Self.bucketCount) { coarsen() }
        let i = Int(offset / width)
        // Modified in place: copying 256 buckets per event would dominate the replay.
        devices[p.name, default: [Bucket?](repeating: nil, count: Self.bucketCount)][i, default: Bucket()].record(p)
    }

    private mutating func coarsen() {
        width *= 2
        for (name, buckets) in devices {
            var merged = [Bucket?](repeating: nil, count: Self.bucketCount)
            for i in 0..<Self.bucketCount / 2 {
                switch (buckets[2 * i], buckets[2 * i + 1]) {
                case (nil, nil): merged[i] = nil
                case (let a?, nil): merged[i] = a
                case (nil, let b?): merged[i] = b
                case (var a?, let b?): a.absorb(b); merged[i] = a
                }
            }
            devices[name] = merged
        }
    }

    /// Buckets with the gaps filled by the state before them (nothing happened, so nothing changed).
    public func filled(_ device: String) -> [Bucket] {
        var out: [Bucket] = []
        var last = Bucket()
        for b in devices[device] ?? [] {
            if let b {
                last = b
                out.append(b)
            } else {
                var carry = Bucket()
                carry.maxLiveMappings = last.endLiveMappings
                carry.maxLiveBytes = last.endLiveBytes
                carry.maxLiveAllocations = last.endLiveAllocations
                carry.maxCoherentBytes = last.endCoherentBytes
                carry.endLiveMappings = last.endLiveMappings
                carry.endLiveBytes = last.endLiveBytes
                carry.endLiveAllocations = last.endLiveAllocations
                carry.endCoherentBytes = last.endCoherentBytes
                last = carry
                out.append(carry)
            }
        }
        return out
    }
}

extension Array {
    /// `array[i, default: v]`: a missing (nil) element reads as `v` and is written back.
    subscript<T>(index: Int, default value: @autoclosure () -> T) -> T where Element == T? {
        get { self[index] ?? value() }
        set { self[index] = newValue }
    }
}
