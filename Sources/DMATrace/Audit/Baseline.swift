import Foundation

/// Known findings by fingerprint: `--write-baseline` records them, `--baseline`
/// then reports only new ones and lists entries that no longer occur.
public struct Baseline: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable, Hashable {
        public var fingerprint: String
        public var rule: String
        public var device: String
        public var message: String
    }

    public var version = 1
    public var tool = "dma-trace"
    public var entries: [Entry]

    public init(findings: [AnalysisDocument.FindingJSON]) {
        var seen = Set<String>()
        entries = findings.compactMap { f in
            guard seen.insert(f.fingerprint).inserted else { return nil }
            return Entry(fingerprint: f.fingerprint, rule: f.rule, device: f.device, message: f.message)
        }.sorted { ($0.rule, $0.device, $0.fingerprint) < ($1.rule, $1.device, $1.fingerprint) }
    }

    public static func load(path: String) throws -> Baseline {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IngestError(path: path, problem: "baseline cannot be read")
        }
        return try decode(data, path: path)
    }

    public static func decode(_ data: Data, path: String) throws -> Baseline {
        do {
            return try JSONDecoder().decode(Baseline.self, from: data)
        } catch let error as DecodingError {
            throw IngestError(path: path, problem: "is not a dma-trace baseline (\(Self.describe(error)); write one with --write-baseline)")
        } catch {
            throw IngestError(path: path, problem: "is not a dma-trace baseline (not JSON)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func at(_ path: [CodingKey]) -> String {
            path.isEmpty ? "" : " at " + path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context): return "no \"\(key.stringValue)\"\(at(context.codingPath))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "unexpected value\(at(context.codingPath))"
        case .dataCorrupted(let context): return context.codingPath.isEmpty ? "not JSON" : "unreadable value\(at(context.codingPath))"
        @unknown default: return "unreadable"
        }
    }

    public func write(to path: String) throws {
        try AtomicFile.write(try JSONEncoder.stable(pretty: true).encode(self) + Data("\n".utf8), to: path)
    }

    public var fingerprints: Set<String> { Set(entries.map(\.fingerprint)) }
}
