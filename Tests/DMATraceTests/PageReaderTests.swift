import Foundation
import Testing
@testable import DMATrace

/// The page reader against libtracecmd's own iteration (`tracecmd_read_next_data`), on
/// every trace.dat in SampleTraces and on v6 and uncompressed v7 conversions of some:
/// the same records (time, CPU, lost events, event id, pid, payload bytes), in the same
/// order, and the same normalized events and counters.
@Suite struct PageReaderTests {
    static let traceDats: [String] = {
        let fm = FileManager.default
        var out: [String] = []
        for folder in ["", "arm64", "faultinject"] {
            let dir = folder.isEmpty ? Fixtures.samples : Fixtures.samples.appendingPathComponent(folder)
            let names = (try? fm.contentsOfDirectory(atPath: dir.path)) ?? []
            out += names.filter { $0.hasSuffix(".dat") }.sorted().map { folder.isEmpty ? $0 : folder + "/" + $0 }
        }
        return out
    }()

    @Test func everySampleFolderHasTraces() {
        #expect(Self.traceDats.count >= 16, "\(Self.traceDats)")
        #expect(Self.traceDats.contains { $0.hasPrefix("arm64/") })
        #expect(Self.traceDats.contains { $0.hasPrefix("faultinject/") })
    }

    @Test(arguments: traceDats)
    func sameRecordsAndEvents(_ name: String) throws {
        try Self.compare(path: Fixtures.sample(name))
    }

    /// trace-cmd 3.1.6 converts to v6 (flat per-CPU pages) and to uncompressed v7.
    @Test(arguments: ["k6.12-lossy.dat", "k6.12-stacks.dat", "faultinject/x86-7.3-plain.dat", "arm64/arm64-6.12-noncoherent.dat"])
    func sameRecordsInConvertedFiles(_ name: String) throws {
        let traceCmd = try #require(Fixtures.which("trace-cmd"), "trace-cmd is needed (apt-get install trace-cmd)")
        let dir = try Fixtures.scratch("convert-" + name)
        for (suffix, args) in [("v6", ["--file-version", "6"]), ("v7-none", ["--compression", "none"])] {
            let out = dir.appendingPathComponent(suffix + ".dat").path
            let run = try Fixtures.run(["convert"] + args + ["-i", Fixtures.sample(name), "-o", out], executable: traceCmd)
            try #require(run.status == 0, "trace-cmd convert failed: \(run.stderr)")
            let reader = try TraceDatReader(path: out, dataPath: .pages)
            #expect(reader.facts.fileVersion == (suffix == "v6" ? 6 : 7))
            try Self.compare(path: out)
        }
    }

    static func compare(path: String) throws {
        var library: [TraceDatReader.RawRecord] = []
        var pages: [TraceDatReader.RawRecord] = []
        try TraceDatReader(path: path, dataPath: .library).rawRecords { library.append($0) }
        let viaPages = try TraceDatReader(path: path, dataPath: .pages)
        try viaPages.rawRecords { pages.append($0) }
        #expect(library.count > 200, "\(path): only \(library.count) records")
        #expect(library.count == pages.count, "\(path): libtracecmd \(library.count) records, pages \(pages.count)")
        if let i = (0..<min(library.count, pages.count)).first(where: { library[$0] != pages[$0] }) {
            Issue.record("\(path): record \(i) differs\n  libtracecmd \(library[i])\n  pages       \(pages[i])")
        }
        #expect(library.contains { $0.missedEvents != 0 } == pages.contains { $0.missedEvents != 0 })

        let viaLibrary = try TraceDatReader(path: path, dataPath: .library)
        var a: [DMAEvent] = [], b: [DMAEvent] = []
        let sa = try viaLibrary.read { a.append($0) }
        let sb = try viaPages.read { b.append($0) }
        #expect(a.count == b.count)
        if let i = (0..<min(a.count, b.count)).first(where: { a[$0] != b[$0] }) {
            Issue.record("\(path): event \(i) differs\n  libtracecmd \(a[i].line)\n  pages       \(b[i].line)")
        }
        #expect(sa.records == sb.records && sa.dmaEvents == sb.dmaEvents && sa.otherRecords == sb.otherRecords)
        #expect(sa.stackRecords == sb.stackRecords && sa.malformedRecords == sb.malformedRecords)
        #expect(sa.lostGaps == sb.lostGaps && sa.lostEventsCounted == sb.lostEventsCounted && sa.uncountedGaps == sb.uncountedGaps)
        #expect(sa.firstTimestamp == sb.firstTimestamp && sa.lastTimestamp == sb.lastTimestamp)
        #expect(sa.unknownEvents == sb.unknownEvents)
        #expect(viaLibrary.facts.cpus == viaPages.facts.cpus)
        #expect(viaLibrary.facts.eventFormats == viaPages.facts.eventFormats)
        #expect(viaLibrary.facts.hasKallsyms == viaPages.facts.hasKallsyms)
    }

    @Test func theDefaultPathIsThePageReader() throws {
        let reader = try TraceDatReader(path: Fixtures.sample("k6.12-iommu.dat"))
        #expect(reader.dataPath == .pages)
    }
}
