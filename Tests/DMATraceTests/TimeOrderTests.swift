import Foundation
import Testing
@testable import DMATrace

/// Text read from trace_pipe (or tracefs `trace` while tracing runs) can print an event after
/// newer events of another CPU: the model must still see time order (TimeOrderWindow).
@Suite struct TimeOrderTests {
    static func event(_ ms: UInt64, cpu: Int32 = 0, dma: UInt64 = 0x1000) -> DMAEvent {
        DMAEvent(timestamp: ms * 1_000_000, cpu: cpu, pid: 1, task: "t", device: "d",
                 kind: .unmap(SingleUnmapEvent(api: .page, dmaAddr: dma, size: 4096, direction: .toDevice, attrs: [])))
    }

    static func run(_ input: [DMAEvent], bound: TimeOrderWindow.Bound) throws -> [DMAEvent] {
        var window = TimeOrderWindow(bound: bound)
        var out: [DMAEvent] = []
        for (i, e) in input.enumerated() { try window.push(e, line: i + 1) { out.append($0) } }
        try window.finish { out.append($0) }
        return out
    }

    @Test func lateLinesWithinTheBoundGoBackInPlace() throws {
        let input = [10, 12, 11, 15, 13, 14, 20].map { Self.event($0) }
        let out = try Self.run(input, bound: .standard)
        #expect(out.map(\.timestamp) == [10, 11, 12, 13, 14, 15, 20].map { $0 * 1_000_000 })
    }

    @Test func equalTimesKeepTheirInputOrder() throws {
        let input = (0..<5).map { Self.event(7, dma: UInt64($0)) }
        let out = try Self.run(input, bound: .standard)
        #expect(out == input)
    }

    @Test func beyondTheSpanALineBecomesAnOutOfOrderEventAndAGap() throws {
        // 1.5 s late with a 1 s span: everything up to 1.5 s before the newest is already out.
        let input = [Self.event(0), Self.event(1_000), Self.event(2_000), Self.event(3_000), Self.event(500, cpu: 1)]
        let out = try Self.run(input, bound: .standard)
        #expect(out.count == 6)
        let late = try #require(out.first { if case .outOfOrder = $0.kind { return true }; return false })
        guard case .outOfOrder(let kind, let ts, let line) = late.kind else { return }
        #expect(ts == 500_000_000 && line == 5 && late.cpu == 1)
        #expect(kind == input[4].kind)
        #expect(out.contains { $0.kind == .lostEvents(count: 1) && $0.cpu == 1 })
        // The stream the model sees never goes back in time.
        #expect(zip(out, out.dropFirst()).allSatisfy { $0.timestamp <= $1.timestamp })
    }

    @Test func beyondTheCountBoundToo() throws {
        let bound = TimeOrderWindow.Bound(span: 1_000_000_000, events: 3)
        let input = [1, 2, 3, 4, 5, 1].map { Self.event($0) }
        let out = try Self.run(input, bound: bound)
        #expect(out.filter { if case .outOfOrder = $0.kind { return true }; return false }.count == 1)
    }

    /// A real tracefs recording as trace_pipe prints it when 37 maps on CPU 0 are committed
    /// 5 ms late (SampleTraces/lab/make-late-trace-pipe.py): in input order the model would
    /// see their unmaps first.
    static let late = Fixtures.sample("k7.3-trace_pipe-late.txt")
    static let original = Fixtures.sample("k7.3-tracefs.txt")

    static func findings(_ path: String, bound: TimeOrderWindow.Bound) throws -> [String] {
        let source = try TraceOpener.open(path: path, options: .init(reorder: bound))
        return try Analyzer.analyze(source: source).findings
            .map { "\($0.rule):\($0.severity):\($0.device):\($0.occurrences)" }.sorted()
    }

    @Test func theLateSampleReallyIsOutOfOrder() throws {
        let errors = try Self.findings(Self.late, bound: .off).filter { $0.contains(":error:") || $0.contains(":warning:") }
        // Without the window: unmaps of mappings "never made", then leaks of the late maps.
        #expect(errors.contains { $0.hasPrefix("unmap-unknown:error:") }, "\(errors)")
    }

    @Test func theWindowGivesTheFindingsOfTheOrderedTrace() throws {
        let reordered = try Self.findings(Self.late, bound: .standard)
        #expect(reordered == (try Self.findings(Self.original, bound: .standard)))
        #expect(!reordered.contains { $0.contains(":error:") || $0.contains(":warning:") }, "\(reordered)")
        var a: [DMAEvent] = [], b: [DMAEvent] = []
        _ = try TraceOpener.open(path: Self.late).read { a.append($0) }
        _ = try TraceOpener.open(path: Self.original).read { b.append($0) }
        #expect(a.count == b.count)
        #expect(a.map(\.timestamp) == b.map(\.timestamp))
    }

    @Test func aLineTooLateIsANoteAndAGapNotAFalseError() throws {
        // The map of 0x2000 is printed 2 s after its unmap (beyond the 1 s window).
        let text = """
                  insmod-10      [000] .....     1.000000: dma_alloc: 0000:00:03.0 dir=BIDIRECTIONAL dma_addr=9000 size=4096 virt_addr=ffff888000009000 flags=GFP_KERNEL attrs=
                      dd-11      [001] .....     1.100000: dma_map_page: 0000:00:03.0 dir=TO_DEVICE dma_addr=1000 size=4096 phys_addr=1000 attrs=
                  <idle>-0       [001] d.h1.     1.200000: dma_unmap_page: 0000:00:03.0 dir=TO_DEVICE dma_addr=2000 size=4096 attrs=
                      dd-11      [001] .....     2.000000: dma_unmap_page: 0000:00:03.0 dir=TO_DEVICE dma_addr=1000 size=4096 attrs=
                      dd-11      [001] .....     3.500000: dma_map_page: 0000:00:03.0 dir=TO_DEVICE dma_addr=3000 size=4096 phys_addr=3000 attrs=
                      dd-12      [000] .....     1.150000: dma_map_page: 0000:00:03.0 dir=TO_DEVICE dma_addr=2000 size=4096 phys_addr=2000 attrs=
                  <idle>-0       [001] d.h1.     3.600000: dma_unmap_page: 0000:00:03.0 dir=TO_DEVICE dma_addr=3000 size=4096 attrs=
        """
        let result = try Fixtures.analyze(text: text, name: "trace_pipe.txt")
        let anomaly = try #require(result.findings.first { $0.rule == "trace-anomaly" }, "\(result.findings.map(\.rule))")
        #expect(anomaly.severity == .note && anomaly.message.contains("out of time order"), "\(anomaly.message)")
        #expect(anomaly.timestamp == 1_150_000_000)
        #expect(!result.findings.contains { $0.severity >= .error }, "\(result.findings.map { "\($0.rule) \($0.severity) \($0.message)" })")
        #expect(result.stats.lateLines == 1)
    }

    /// Issue 14, item 9: tracefs names trace_marker writes `tracing_mark_write:`.
    @Test func tracefsMarkersGiveFindingsTheirPhase() throws {
        var markers: [String] = []
        _ = try TraceOpener.open(path: Self.original).read { if case .marker(let t) = $0.kind { markers.append(t) } }
        #expect(markers.first == "LAB: phase load-drivers" && markers.count == 6, "\(markers)")
        let result = try Analyzer.analyze(path: Self.original)
        let leak = try #require(result.findings.first { $0.rule == "mapping-leak" })
        #expect(leak.marker == "LAB: phase net-ping")
    }
}
