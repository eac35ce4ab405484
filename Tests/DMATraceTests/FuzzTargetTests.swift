import Foundation
import Testing
@testable import DMATrace

/// What the libFuzzer targets (Fuzz/, Docs/fuzzing.md) rely on, and every input they found
/// that once crashed (Fuzz/Regressions/TARGET), replayed through the same code.
@Suite struct FuzzTargetTests {
    static let fuzz = Fixtures.root.appendingPathComponent("Fuzz")

    static func files(_ folder: String) -> [URL] {
        let dir = fuzz.appendingPathComponent(folder)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().map { dir.appendingPathComponent($0) }
    }

    /// The same body as FuzzTextReader.
    static func textReader(_ bytes: Data) {
        guard let reader = try? TextTraceReader(path: "fuzz.txt", sniffed: bytes.prefix(4096), options: .init(),
                                                content: bytes),
              let result = try? Analyzer.analyze(source: reader) else { return }
        _ = TextReport(color: false).render(result, findings: result.findings)
        _ = try? JSONEncoder.stable().encode(AnalysisDocument(result, findings: result.findings))
    }

    /// The raw-record seam FuzzRecordDecoder uses decodes a record exactly as the file reader does.
    @Test func rawRecordSeamDecodesLikeTheFileReader() throws {
        let path = Fixtures.sample("k6.12-stacks.dat")
        var byTime: [UInt64: DMAEvent] = [:]
        _ = try TraceOpener.open(path: path).read { byTime[$0.timestamp] = $0 }
        let reader = try TraceDatReader(path: path)
        let seeds = Self.files("Corpus/FuzzRecordDecoder").filter { $0.lastPathComponent.hasPrefix("f0-") }
        #expect(seeds.count >= 8)
        var compared = 0, stacks = 0
        for seed in seeds {
            let data = try Data(contentsOf: seed)
            let ts = try #require(UInt64(seed.lastPathComponent.split(separator: "-").last!))
            var decoder = try #require(reader.makeDecoder())
            var stats = IngestStats()
            let event = data.dropFirst().withUnsafeBytes { decoder.decode(payload: $0, timestamp: ts, cpu: 0, stats: &stats) }
            if seed.lastPathComponent.contains("kernel_stack") {
                let stack = data.dropFirst().withUnsafeBytes { decoder.decodeStack(payload: $0) }
                #expect((stack?.frames.count ?? 0) > 3, "\(seed.lastPathComponent)")
                stacks += 1
                continue
            }
            let expected = try #require(byTime[ts], "\(seed.lastPathComponent)")
            #expect(event?.kind == expected.kind && event?.device == expected.device && event?.pid == expected.pid,
                    "\(seed.lastPathComponent)")
            compared += 1
        }
        #expect(compared >= 6 && stacks >= 1)
    }

    @Test func seedCorporaAreWhatTheirNamesSay() throws {
        for file in Self.files("Corpus/FuzzTextReader") {
            let r = try Analyzer.analyze(path: file.path)
            #expect(r.stats.dmaEvents > 0 && r.stats.unreadableLines == 0, "\(file.lastPathComponent)")
        }
        let config = Self.fuzz.appendingPathComponent("Corpus/FuzzAuditConfig")
        #expect(try AuditConfig.load(path: config.appendingPathComponent("full.yml").path).suppressions.count == 1)
        for bad in ["bad-severity.yml", "no-reason.yml", "unknown-rule.yml"] {
            #expect(throws: AuditConfig.ConfigError.self) { try AuditConfig.load(path: config.appendingPathComponent(bad).path) }
        }
        let baseline = Self.fuzz.appendingPathComponent("Corpus/FuzzBaseline/faultinject.json").path
        #expect(try Baseline.load(path: baseline).entries.count > 0)
    }

    /// Every committed crash input, through the target it crashed.
    @Test func committedCrashInputsNoLongerCrash() throws {
        for file in Self.files("Regressions/FuzzTextReader") { Self.textReader(try Data(contentsOf: file)) }
        for file in Self.files("Regressions/FuzzAuditConfig") {
            _ = try? AuditConfig.parse(String(decoding: try Data(contentsOf: file), as: UTF8.self), path: "fuzz.yml")
        }
        for file in Self.files("Regressions/FuzzBaseline") { _ = try? Baseline.decode(try Data(contentsOf: file), path: "fuzz.json") }
    }
}
