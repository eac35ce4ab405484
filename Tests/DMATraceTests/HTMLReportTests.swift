import Foundation
import Testing
@testable import DMATrace

@Suite struct HTMLReportTests {
    static let hostile = """
    cpus=2
      kworker/0:1-42   [000] 0.500000: dma_alloc: 0000:00:05.0 dir=BIDIRECTIONAL dma_addr=f0000 size=4096 virt_addr=0xffff8880000f0000 flags=GFP_KERNEL attrs=
                init-1     [001]     0.900000: print:                tracing_mark_write: begin <script>alert(1)</script>
      x"><img src=x onerror=alert(2)>-7   [000] 1.000000: dma_map_page: 0000:00:05.0 dir=FROM_DEVICE dma_addr=100000 size=4096 phys_addr=100000 attrs=
      kworker/0:1-42   [000] 1.100000: dma_unmap_page: 0000:00:05.0 dir=FROM_DEVICE dma_addr=100000 size=2048 attrs=
    """

    func document(_ text: String) throws -> AnalysisDocument {
        var options = AnalysisOptions()
        options.timeline = true
        let r = try Analyzer.analyze(source: TextTraceReader(name: "hostile.txt", text: text), options: options)
        return AnalysisDocument(r, findings: r.findings)
    }

    @Test func pageModelSummarizesTheTrace() throws {
        let page = ReportPage(document: try document(Self.hostile))
        #expect(page.verdict.errors == 1 && !page.verdict.clean)
        #expect(page.verdict.rules.first?.id == "unmap-size-mismatch")
        #expect(page.devices.count == 1)
        let chart = try #require(page.devices[0].chart)
        #expect(chart.maxMappings == 1)
        #expect(chart.marks.contains { $0.cls == "error" })
        #expect(page.findings.first?.severity == "error")
        #expect(page.findings.first?.history.count == 2)
        #expect(page.ruleDocs.contains { $0.id == "unmap-size-mismatch" })
    }

    @Test func traceTextIsEscaped() throws {
        let html = HTMLReport.render(try document(Self.hostile))
        #expect(!html.contains("<img src=x"))
        #expect(!html.contains("<script>alert"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(html.contains("x&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"))
    }

    /// A task may name itself with ESC or BEL (prctl PR_SET_NAME): the page shows them, escaped.
    @Test func controlCharactersFromTheTraceAreShownNotPassedThrough() throws {
        let text = Self.hostile.replacingOccurrences(of: "x\"><img src=x onerror=alert(2)>-7", with: "evil\u{1b}[31m\u{7}\u{9b}-7")
        let html = HTMLReport.render(try document(text))
        #expect(html.contains("evil\\x1b[31m\\x07\\u{9b}"))
        #expect(!html.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" && $0 != "\t" && $0 != "\r" })
        #expect(!html.unicodeScalars.contains { $0.value >= 0x7f && $0.value <= 0x9f })
        let index = HTMLReport.renderIndex([.init(trace: "t\u{1b}.dat", href: nil, errors: 0, warnings: 0, notes: 0, problem: nil, kernel: "k")])
        #expect(index.contains("t\\x1b.dat"))
    }

    @Test func timelineStaysBoundedHoweverLongTheTrace() {
        var t = Timeline()
        var p = DeviceProfile(name: "d", at: 0)
        for i in 0..<100_000 {
            p.liveMappings = i % 50
            t.note(at: UInt64(i) * 1_000_000, p)
        }
        #expect(t.devices["d"]?.count == Timeline.bucketCount)
        #expect(t.filled("d").map(\.maxLiveMappings).max() == 49)
        #expect(UInt64(Timeline.bucketCount) * t.width >= 100_000 * 1_000_000)
    }

    @Test func realRecordingRendersAsAValidSelfContainedPage() throws {
        let dir = try Fixtures.scratch()
        let out = dir.appendingPathComponent("report.html")
        let r = try Fixtures.run(["report", Fixtures.sample("k6.12-stacks.dat"), "-o", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let python = try #require(Fixtures.which("python3"))
        let check = try Fixtures.run([Fixtures.root.appendingPathComponent("Scripts/check-html.py").path,
                                      "--require=trace,devices,findings,rules", out.path], executable: python)
        #expect(check.status == 0, "\(check.stdout)")
        #expect(check.stdout.contains("4 charts"))
        let html = try String(contentsOf: out, encoding: .utf8)
        #expect(html.contains("nvme_alloc_queue"), "the kernel stack is in the page")
        #expect(html.contains("6.12.117+deb13-amd64"))
    }

    @Test func auditWritesAPagePerTraceAndAnIndex() throws {
        let dir = try Fixtures.scratch()
        let html = dir.appendingPathComponent("html")
        let r = try Fixtures.run(["audit", "--quiet", "--html", html.path, Fixtures.sample("k6.12-iommu.dat"),
                                  Fixtures.sample("k7.3-trace_pipe.txt"), dir.appendingPathComponent("missing.dat").path])
        #expect(r.status == 2)
        let files = try FileManager.default.contentsOfDirectory(atPath: html.path).sorted()
        #expect(files == ["001-k6.12-iommu.dat.html", "002-k7.3-trace_pipe.txt.html", "index.html"])
        let index = try String(contentsOf: html.appendingPathComponent("index.html"), encoding: .utf8)
        #expect(index.contains("href=\"001-k6.12-iommu.dat.html\"") && index.contains("missing.dat"))
        let python = try #require(Fixtures.which("python3"))
        let check = try Fixtures.run([Fixtures.root.appendingPathComponent("Scripts/check-html.py").path] + files.map { html.appendingPathComponent($0).path },
                                     executable: python)
        #expect(check.status == 0, "\(check.stdout)")
    }
}
