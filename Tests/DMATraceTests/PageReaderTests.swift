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
    @Test(arguments: ["k6.12-lossy.dat", "k6.12-stacks.dat", "faultinject/x86-7.3-plain-stacks.dat", "arm64/arm64-6.12-noncoherent.dat"])
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
        #expect(viaLibrary.facts.fileVersion == viaPages.facts.fileVersion)
        #expect(viaLibrary.facts.clock == viaPages.facts.clock)
        #expect(viaLibrary.facts.kernelRelease == viaPages.facts.kernelRelease)
        #expect(viaLibrary.facts.generation == viaPages.facts.generation)
        // libtracecmd's reader asks tep_find_function about two fixed kernel addresses, which
        // KASLR moves out of reach; the page reader says whether the file has symbols at all.
        #expect(viaPages.facts.hasKallsyms)
    }

    /// A v7 file's compressed kallsyms are decompressed only when asked for (a kernel stack
    /// needs them); what the open says about them beforehand must be what they then hold.
    @Test(arguments: ["faultinject/x86-6.12-plain-stacks.dat", "k6.12-iommu.dat", "k6.12-swiotlb.dat"])
    func lazyKallsymsAgreeWithWhatTheOpenSaid(_ name: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.sample(name)))
        let layout = try data.withUnsafeBytes { try TraceDatLayout.read($0) }
        #expect(layout.version == 7)
        let text = try data.withUnsafeBytes { _ in try layout.kallsyms?.text }
        #expect(layout.hasKallsyms == ((text?.isEmpty ?? true) == false))
        // Asked again: the same bytes, not a second decompression's.
        let again = try layout.kallsyms
        #expect(again?.text == text)
        if name.contains("stacks") {
            #expect(text?.contains(" dma_map_page_attrs") == true, "the symbols the stacks resolve against")
        }
    }

    /// Made once; a failure is remembered and thrown again rather than tried again.
    @Test func aLazyBlobIsMadeOnce() throws {
        struct Broken: Error {}
        var calls = 0
        let failing = LazyBlob { calls += 1; throw Broken() }
        #expect(throws: Broken.self) { try failing.blob() }
        #expect(throws: Broken.self) { try failing.blob() }
        #expect(calls == 1)
        let bytes = SectionBytes(mapped: UnsafeRawBufferPointer(start: nil, count: 0), owner: nil)
        var made = 0
        let lazy = LazyBlob { made += 1; return TraceDatLayout.Blob(owner: bytes, range: 0..<0) }
        _ = try lazy.blob()
        _ = try lazy.blob()
        #expect(made == 1)
    }

    /// Compressed chunks decompressed on the reader's thread (no core to spare beside a replay)
    /// and on threads of their own give the same events, record for record.
    @Test(arguments: ["k6.12-stacks.dat", "k6.12-lossy.dat", "faultinject/x86-7.3-plain-stacks.dat"])
    func inlineAndThreadedDecompressionAgree(_ name: String) throws {
        func read(besideBusyThreads n: Int) throws -> [DMAEvent] {
            let reader = try TraceDatReader(path: Fixtures.sample(name))
            reader.sharesCores(withBusyThreads: n)
            var out: [DMAEvent] = []
            _ = try reader.read { out.append($0) }
            return out
        }
        let threaded = try read(besideBusyThreads: 0)
        let inline = try read(besideBusyThreads: 1 << 20)
        #expect(!threaded.isEmpty)
        #expect(threaded == inline)
    }

    @Test func theDefaultPathIsThePageReader() throws {
        let reader = try TraceDatReader(path: Fixtures.sample("k6.12-iommu.dat"))
        #expect(reader.dataPath == .pages)
    }
}

/// Hostile files aimed at the page reader: every one gives an error naming the file,
/// or a complete read; never a crash, a hang or a silently shortened stream.
@Suite struct PageReaderBadInputTests {
    static func v6(_ name: String, _ scratch: String = #function) throws -> (URL, Data, TraceDatLayout) {
        let traceCmd = try #require(Fixtures.which("trace-cmd"), "trace-cmd is needed (apt-get install trace-cmd)")
        let out = try Fixtures.scratch(scratch).appendingPathComponent("v6.dat")
        let run = try Fixtures.run(["convert", "--file-version", "6", "-i", Fixtures.sample(name), "-o", out.path], executable: traceCmd)
        try #require(run.status == 0, "trace-cmd convert failed: \(run.stderr)")
        let data = try Data(contentsOf: out)
        return (out, data, try data.withUnsafeBytes { try TraceDatLayout.read($0) })
    }

    func expectError(_ path: String, mentioning words: [String], sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        do {
            _ = try Analyzer.analyze(path: path)
            Issue.record("\(path) was accepted", sourceLocation: sourceLocation)
        } catch let e as IngestError {
            #expect(e.description.hasPrefix(path + ":"), "\(e)", sourceLocation: sourceLocation)
            for w in words { #expect(e.problem.contains(w), "\(e.problem) should mention '\(w)'", sourceLocation: sourceLocation) }
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func corruptPageHeaderNamesTheCPUAndPage() throws {
        let (url, original, layout) = try Self.v6("k6.12-iommu.dat")
        var data = original
        let cpu = try #require(layout.cpus.first { $0.size > 8 * layout.pageSize })
        // Page 3's commit word: a size larger than any page.
        let at = cpu.offset + 3 * layout.pageSize + 8
        for i in 0..<8 { data[at + i] = i == 0 ? 0xff : (i < 3 ? 0xff : 0) }
        try data.write(to: url)
        expectError(url.path, mentioning: ["corrupted", "CPU \(cpu.cpu)", "page 3", "commit size"])
    }

    @Test func eventLengthBeyondThePage() throws {
        let (url, original, layout) = try Self.v6("k6.12-iommu.dat")
        var data = original
        let cpu = try #require(layout.cpus.first { $0.size > 8 * layout.pageSize })
        // Page 2's first event header: a long event (type_len 0) claiming 1 MiB.
        let at = cpu.offset + 2 * layout.pageSize + 16
        for (i, b) in [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00].enumerated() { data[at + i] = UInt8(b) }
        try data.write(to: url)
        expectError(url.path, mentioning: ["corrupted", "page 2", "runs past the page"])
    }

    @Test func cpuDataCutShort() throws {
        let (url, data, layout) = try Self.v6("k6.12-iommu.dat")
        let cpu = try #require(layout.cpus.last { $0.size > 0 })
        try data.prefix(cpu.offset + cpu.size / 2).write(to: url)
        expectError(url.path, mentioning: ["damaged", "truncated"])
    }

    /// Both ways of decompressing (on the reader's thread, or ahead on threads of their own).
    @Test(arguments: [0, 1 << 20])
    func zstdGarbageInAChunk(besideBusyThreads: Int) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.sample("k6.12-stacks.dat")))
        let layout = try data.withUnsafeBytes { try TraceDatLayout.read($0) }
        #expect(layout.compression == .zstd)
        let cpu = try #require(layout.cpus.first { ($0.chunks?.count ?? 0) > 2 })
        let chunk = cpu.chunks![1]
        var rng = SplitMix(seed: 99)
        for i in chunk.offset..<(chunk.offset + chunk.compressedSize) { data[i] = UInt8(truncatingIfNeeded: rng.next()) }
        let url = try Fixtures.scratch("garbage-\(besideBusyThreads)").appendingPathComponent("garbage.dat")
        try data.write(to: url)
        expectError(url.path, mentioning: ["corrupted", "CPU \(cpu.cpu)", "chunk 1 ", "does not decompress"])
        let reader = try TraceDatReader(path: url.path)
        reader.sharesCores(withBusyThreads: besideBusyThreads)
        let error = #expect(throws: IngestError.self) { _ = try reader.read { _ in } }
        #expect(error?.description.contains("chunk 1 ") == true, "\(String(describing: error))")
    }

    /// A v7 file's compressed kallsyms are read only when a kernel stack needs them: a damaged
    /// section then fails the read with the same words the open would have used, naming the file.
    @Test func damagedKallsymsFailTheFirstStack() throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.sample("faultinject/x86-6.12-plain-stacks.dat")))
        // The kallsyms section (id 19, compressed): its header, then the compressed and the
        // decompressed size, then the zstd frame, whose magic is made unreadable.
        var at: Int?
        var i = data.startIndex
        while let r = data[i...].firstRange(of: Data([0x13, 0x00, 0x01, 0x00])) {
            let rsize = data[(r.lowerBound + 20)..<(r.lowerBound + 24)].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
            if rsize > 1 << 20 { at = r.lowerBound; break }
            i = r.upperBound
        }
        let section = try #require(at, "the sample's kallsyms section")
        for j in (section + 24)..<(section + 32) { data[j] ^= 0xff }
        let url = try Fixtures.scratch().appendingPathComponent("kallsyms.dat")
        try data.write(to: url)
        expectError(url.path, mentioning: ["damaged", "section 19 does not decompress"])
    }

    @Test func chunkTableRunningPastTheData() throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.sample("k6.12-stacks.dat")))
        let layout = try data.withUnsafeBytes { try TraceDatLayout.read($0) }
        let cpu = try #require(layout.cpus.first { ($0.chunks?.count ?? 0) > 2 })
        // The second chunk's compressed size, 8 bytes before its data, made huge.
        let at = cpu.chunks![1].offset - 8
        for i in 0..<4 { data[at + i] = 0x7f }
        let url = try Fixtures.scratch().appendingPathComponent("table.dat")
        try data.write(to: url)
        expectError(url.path, mentioning: ["damaged", "chunk 1 runs past"])
    }

    /// Flipped bytes in v6's uncompressed event format texts reach libtraceevent's parser,
    /// which crashes on some (DOMAIN.md §6): the child probe must take that, never this process.
    @Test(arguments: 0..<6)
    func flippedFormatTextsInV6(seed: Int) throws {
        let (url, original, layout) = try Self.v6("k6.12-iommu.dat", "fmt-v6-\(seed)")
        var data = original
        let dma = layout.formats.filter { $0.system == "dma" || $0.system == "ftrace" }
        var rng = SplitMix(seed: UInt64(seed) &+ 77)
        for _ in 0..<12 {
            let f = dma[Int(rng.next() % UInt64(dma.count))].format
            data[f.range.lowerBound + Int(rng.next() % UInt64(f.range.count))] = UInt8(truncatingIfNeeded: rng.next())
        }
        try data.write(to: url)
        do {
            _ = try Analyzer.analyze(path: url.path)
        } catch let e as IngestError {
            #expect(e.description.hasPrefix(url.path + ":"), "\(e)")
        }
    }

    /// Flipped bytes anywhere in the CPU data, of a v6 and of a zstd v7 file.
    @Test(arguments: 0..<10)
    func flippedBytesInCPUData(seed: Int) throws {
        var rng = SplitMix(seed: UInt64(seed) &+ 1000)
        let (v6url, v6data, v6layout) = try Self.v6("k6.12-lossy.dat", "flip-v6-\(seed)")
        let v7url = URL(fileURLWithPath: Fixtures.sample("k6.12-lossy.dat"))
        let v7data = try Data(contentsOf: v7url)
        let v7layout = try v7data.withUnsafeBytes { try TraceDatLayout.read($0) }
        for (url, original, layout) in [(v6url, v6data, v6layout), (v7url, v7data, v7layout)] {
            var data = original
            let cpus = layout.cpus.filter { $0.size > 0 }
            for _ in 0..<16 {
                let cpu = cpus[Int(rng.next() % UInt64(cpus.count))]
                let at = cpu.offset + Int(rng.next() % UInt64(cpu.size))
                data[at] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
            }
            let out = try Fixtures.scratch("flip-\(seed)-\(layout.version)").appendingPathComponent(url.lastPathComponent)
            try data.write(to: out)
            do {
                _ = try Analyzer.analyze(path: out.path)
            } catch let e as IngestError {
                #expect(e.description.hasPrefix(out.path + ":"), "\(e)")
            }
        }
    }
}
