import Foundation
import Testing
@testable import DMATrace

/// The v6 writer, with trace-cmd's own reader as the judge: a recording is taken apart into
/// its formats and raw pages and written again; trace-cmd report and dma-trace must read the
/// copy exactly as they read the original.
@Suite struct TraceDatWriterTests {
    static func v6Copy(of sample: String, in dir: URL) throws -> String {
        let out = dir.appendingPathComponent("original-v6.dat").path
        let r = try Fixtures.run(["convert", "--file-version", "6", "--compression", "none", "-i", Fixtures.sample(sample), "-o", out],
                                 executable: "/usr/bin/trace-cmd")
        #expect(r.status == 0, "\(r.stderr)")
        return out
    }

    static func rewrite(_ original: TraceDatV6Sections, to path: String, spaceLimit: Int? = nil) throws -> (TraceDatV6Writer, TraceDatTruncation?) {
        let writer = try TraceDatV6Writer(path: path, pageSize: original.metadata.pageSize, spaceLimit: spaceLimit)
        // Interleaved as a live capture delivers them.
        let longest = original.pages.map(\.count).max() ?? 0
        for i in 0..<longest {
            for (cpu, pages) in original.pages.enumerated() where i < pages.count {
                if !writer.append(page: pages[i], cpu: cpu) { break }
            }
        }
        return (writer, try writer.finish(metadata: original.metadata, cpus: original.pages.count))
    }

    @Test func rewrittenFileReadsLikeTheOriginal() throws {
        let dir = try Fixtures.scratch()
        let original = try Self.v6Copy(of: "k6.12-stacks.dat", in: dir)
        let sections = try TraceDatV6Sections(path: original)
        #expect(sections.pages.count == 2)
        let copy = dir.appendingPathComponent("copy.dat").path
        let (_, truncation) = try Self.rewrite(sections, to: copy)
        #expect(truncation == nil)
        let again = try TraceDatV6Sections(path: copy)
        #expect(again.pages.map(\.count) == sections.pages.map(\.count))

        let report = { (path: String) throws -> Fixtures.Run in
            try Fixtures.run(["report", "-i", path], executable: "/usr/bin/trace-cmd")
        }
        let a = try report(original), b = try report(copy)
        #expect(a.status == 0 && b.status == 0, "\(b.stderr)")
        // The first line names the file; everything after it must be identical.
        let body = { (s: String) in s.split(separator: "\n", omittingEmptySubsequences: false).dropFirst().joined(separator: "\n") }
        #expect(body(a.stdout) == body(b.stdout))
        #expect(a.stdout.split(separator: "\n").count > 500)

        let ea = try Fixtures.events(path: original), eb = try Fixtures.events(path: copy)
        #expect(ea.count == eb.count && ea.count > 300)
        #expect(zip(ea, eb).allSatisfy { $0 == $1 })
        let fa = try Analyzer.analyze(path: original).findings, fb = try Analyzer.analyze(path: copy).findings
        #expect(fa.map { "\($0.rule) \($0.severity) \($0.device) \($0.timestamp) \($0.message)" }
            == fb.map { "\($0.rule) \($0.severity) \($0.device) \($0.timestamp) \($0.message)" })
    }

    /// Disk full while joining the spools: the file keeps the pages that fit and says so in its
    /// CPU table, and trace-cmd reads it to its end.
    @Test func diskFullLeavesAValidPrefix() throws {
        let dir = try Fixtures.scratch()
        let original = try Self.v6Copy(of: "k6.12-stacks.dat", in: dir)
        var sections = try TraceDatV6Sections(path: original)
        // Without kallsyms the header is a few pages, so the spools fill the disk first
        // (during the capture) and the header then needs room that pages must give up.
        sections.metadata.kallsyms = []
        let headerBytes = TraceDatV6Writer.header(sections.metadata, cpus: 2).count
        let total = sections.pages.map(\.count).reduce(0, +)
        #expect(total > 20)
        let limit = headerBytes + sections.metadata.pageSize * (total / 4)
        let copy = dir.appendingPathComponent("full.dat").path
        let (writer, truncation) = try Self.rewrite(sections, to: copy, spaceLimit: limit)
        let t = try #require(truncation)
        #expect(writer.failure?.contains("No space left on device") == true)
        #expect(t.losses.contains { $0.kept < $0.captured })
        #expect("\(t)".contains("of \(sections.pages[t.losses[0].cpu].count) pages"))
        let again = try TraceDatV6Sections(path: copy)
        // Only what the header needed was given up: the disk ends up nearly full.
        let kept = again.pages.joined().count
        #expect(kept >= (limit - headerBytes) / sections.metadata.pageSize - 3, "kept \(kept) pages")
        for (cpu, pages) in again.pages.enumerated() {
            // What is kept is the oldest part of each CPU, page for page.
            #expect(Array(sections.pages[cpu].prefix(pages.count)) == pages)
        }
        let r = try Fixtures.run(["report", "-i", copy], executable: "/usr/bin/trace-cmd")
        #expect(r.status == 0, "\(r.stderr)")
        // trace-cmd reads every record the kept pages hold.
        let lines = r.stdout.split(separator: "\n").filter { $0.contains(": ") }.count
        #expect(lines > 20)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".cpu") }.isEmpty)
    }
}
