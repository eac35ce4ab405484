import Foundation
import Testing
@testable import DMATrace

/// Every bad input: one clear error naming the file, never a crash or a hang.
@Suite struct BadInputTests {
    func expectIngestError(_ path: String, mentioning words: String) {
        do {
            _ = try Analyzer.analyze(path: path)
            Issue.record("\(path) was accepted")
        } catch let e as IngestError {
            #expect(e.description.hasPrefix(path + ":"), "\(e)")
            #expect(e.problem.contains(words), "\(e.problem) should mention '\(words)'")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func missingFile() throws {
        let dir = try Fixtures.scratch()
        expectIngestError(dir.appendingPathComponent("nope.dat").path, mentioning: "no such file")
    }

    @Test func directory() throws {
        expectIngestError(try Fixtures.scratch().path, mentioning: "directory")
    }

    @Test func emptyFile() throws {
        let f = try Fixtures.scratch().appendingPathComponent("empty.dat")
        try Data().write(to: f)
        expectIngestError(f.path, mentioning: "empty")
    }

    @Test func textThatIsNotATrace() throws {
        let f = try Fixtures.scratch().appendingPathComponent("notes.txt")
        try "shopping list\neggs\nmilk\n".write(to: f, atomically: true, encoding: .utf8)
        expectIngestError(f.path, mentioning: "no ftrace event line")
    }

    @Test func binaryGarbage() throws {
        let f = try Fixtures.scratch().appendingPathComponent("garbage.bin")
        var rng = SystemRandomNumberGenerator()
        try Data((0..<65536).map { _ in UInt8.random(in: 0...255, using: &rng) }).write(to: f)
        expectIngestError(f.path, mentioning: "binary")
    }

    @Test(arguments: [16, 200, 4096, 30000, 300_000, 900_000, 1_600_000])
    func truncatedTraceDat(at length: Int) throws {
        let whole = try Data(contentsOf: URL(fileURLWithPath: Fixtures.sample("k6.12-nvme-e1000e-ahci-xhci.dat")))
        let f = try Fixtures.scratch("trunc\(length)").appendingPathComponent("truncated.dat")
        try whole.prefix(length).write(to: f)
        expectIngestError(f.path, mentioning: "trace.dat")
    }

    /// Flipped bytes in the format section crash libtraceevent itself (DOMAIN.md §6):
    /// the isolated probe must turn that into an error, whatever the library does.
    @Test(arguments: 0..<12)
    func corruptedHeaderNeverCrashes(seed: Int) throws {
        var whole = try Data(contentsOf: URL(fileURLWithPath: Fixtures.sample("k6.12-iommu.dat")))
        var rng = SplitMix(seed: UInt64(seed))
        for _ in 0..<8 {
            let at = Int(rng.next() % 60000) + 16
            whole[at] = UInt8(truncatingIfNeeded: rng.next())
        }
        let f = try Fixtures.scratch("flip\(seed)").appendingPathComponent("flipped.dat")
        try whole.write(to: f)
        do {
            _ = try Analyzer.analyze(path: f.path)
        } catch let e as IngestError {
            #expect(e.description.hasPrefix(f.path + ":"))
        }
    }

    @Test func damagedCompressedBlockIsNotPassedOffAsComplete() throws {
        // A flip deep in CPU data: the iteration stops early inside libtracecmd.
        var whole = try Data(contentsOf: URL(fileURLWithPath: Fixtures.sample("k6.12-swiotlb.dat")))
        whole[1_747_971] ^= 0x10
        let f = try Fixtures.scratch().appendingPathComponent("damaged.dat")
        try whole.write(to: f)
        expectIngestError(f.path, mentioning: "corrupted")
    }
}

/// Deterministic random numbers for reproducible corruption.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
