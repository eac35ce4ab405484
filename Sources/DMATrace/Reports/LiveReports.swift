import Foundation

extension TextReport {
    /// One finding on one line, as watch prints it the moment it is judged.
    public static func oneLine(_ f: Finding) -> String {
        var s = "\(f.severity) [\(f.rule)] \(f.device) at \(formatSeconds(f.timestamp)) s, cpu \(f.cpu): \(f.message)"
        if let m = f.marker { s += " (during \(m))" }
        if !f.caveats.isEmpty { s += " (caveat: \(f.caveats.joined(separator: "; ")))" }
        return s
    }
}

extension AnalysisDocument {
    /// One finding as one NDJSON line: the object `analyze --format json` lists it with.
    public static func findingLine(_ f: Finding, encoder: JSONEncoder) throws -> String {
        String(decoding: try encoder.encode(FindingJSON(f)), as: UTF8.self)
    }
}
