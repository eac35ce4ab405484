import Testing
@testable import DMATrace

/// The replay's own hash table against Swift's Dictionary, operation by operation
/// (SplitMix: BadInputTests' deterministic generator, so a failure replays the same way).
@Suite struct AddressMapTests {
    /// Keys drawn from a few pages' worth of addresses, page-aligned addresses (the real
    /// pattern), the extremes (DMA_MAPPING_ERROR is all ones) and random words: long probe
    /// runs, wrap-around at the table's end, and deletions in the middle of runs.
    static func key(_ rng: inout SplitMix) -> UInt64 {
        switch rng.next() % 4 {
        case 0: return rng.next() % 64
        case 1: return (0x1_0000_0000 + (rng.next() % 512)) << 12
        case 2: return [0, UInt64.max, UInt64.max - 1, 1 << 63][Int(rng.next() % 4)]
        default: return rng.next()
        }
    }

    @Test(arguments: [1, 2, 3, 4])
    func behavesLikeADictionary(seed: UInt64) {
        var rng = SplitMix(seed: seed)
        var map = AddressMap<String>()
        var reference: [UInt64: String] = [:]
        for step in 0..<60_000 {
            let k = Self.key(&rng)
            switch rng.next() % 7 {
            case 0, 1:
                map[k] = "v\(step)"
                reference[k] = "v\(step)"
            case 2:
                #expect(map.removeValue(forKey: k) == reference.removeValue(forKey: k))
            case 3:
                let removed = map.removeValue(forKey: k) { $0.hasSuffix("7") }
                let expected = reference[k]?.hasSuffix("7") == true ? reference[k] : nil
                #expect(removed == expected)
                if removed != nil { reference[k] = nil }
            case 4:
                map.modify(k, default: "new") { $0 += "+" }
                reference[k, default: "new"] += "+"
            case 5:
                // updateValue hands back what it replaced.
                #expect(map.updateValue("u\(step)", forKey: k) == reference.updateValue("u\(step)", forKey: k))
            default:
                #expect(map[k] == reference[k])
                #expect(map.contains(k) == (reference[k] != nil))
            }
            #expect(map.count == reference.count)
        }
        #expect(Dictionary(uniqueKeysWithValues: map.entries.map { ($0.key, $0.value) }) == reference)
        #expect(map.values.sorted() == reference.values.sorted())
        for k in reference.keys { #expect(map.removeValue(forKey: k) == reference[k]) }
        #expect(map.isEmpty)
    }
}
