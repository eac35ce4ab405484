import Foundation
@testable import DMATrace

enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let samples = root.appendingPathComponent("SampleTraces")

    static func sample(_ name: String) -> String { samples.appendingPathComponent(name).path }

    static let realTraces = [
        "k6.12-nvme-e1000e-ahci-xhci.dat",
        "k6.12-iommu.dat",
        "k6.12-swiotlb.dat",
        "k7.3-nvme-e1000e-ahci-xhci.dat",
    ]

    /// A scratch folder the test owns.
    static func scratch(_ name: String = #function) throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("dma-trace-tests-\(ProcessInfo.processInfo.processIdentifier)")
            .appendingPathComponent(name.filter { $0.isLetter || $0.isNumber })
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    static func analyze(text: String, name: String = "example.txt") throws -> AnalysisResult {
        try Analyzer.analyze(source: TextTraceReader(name: name, text: text))
    }

    static func events(text: String) throws -> ([DMAEvent], IngestStats) {
        var out: [DMAEvent] = []
        let stats = try TextTraceReader(name: "inline.txt", text: text).read { out.append($0) }
        return (out, stats)
    }

    static func events(path: String) throws -> [DMAEvent] {
        var out: [DMAEvent] = []
        _ = try TraceOpener.open(path: path).read { out.append($0) }
        return out
    }

    /// The built command-line tool, next to the test bundle.
    static var binary: URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("dma-trace"),
            Bundle.main.bundleURL.appendingPathComponent("dma-trace"),
            root.appendingPathComponent(".build/debug/dma-trace"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates.last!
    }

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ args: [String], executable: String? = nil) throws -> Run {
        let p = Process()
        p.executableURL = executable.map { URL(fileURLWithPath: $0) } ?? binary
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read before waiting: a full pipe would block the child.
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
}
