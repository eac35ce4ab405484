import Foundation

/// What a trace says about itself, apart from its events.
public struct TraceFacts: Sendable, Codable {
    public enum Format: String, Sendable, Codable {
        case traceDat = "trace.dat"
        case traceCmdReport = "trace-cmd report text"
        case tracefs = "tracefs text"
        case perfScript = "perf script text"
        case perfData = "perf.data (through perf script)"
        case live = "live tracefs"
    }

    public var path: String
    public var format: Format
    /// trace.dat file version (6, 7).
    public var fileVersion: Int?
    /// `uname -r` of the recorded kernel, when the file stores it.
    public var kernelRelease: String?
    public var cpus: Int?
    public var clock: String?
    /// Names of the dma/swiotlb/iommu events the trace has formats for (trace.dat)
    /// or has records of (text).
    public var eventFormats: [String] = []
    public var generation: EventGeneration = .unknown
    public var hasKallsyms: Bool = false

    public init(path: String, format: Format) {
        self.path = path
        self.format = format
    }
}

/// Counters an ingest pass collects; complete only after the pass.
public struct IngestStats: Sendable, Codable {
    public var records: UInt64 = 0
    public var dmaEvents: UInt64 = 0
    public var firstTimestamp: UInt64?
    public var lastTimestamp: UInt64?
    /// Events of the dma, swiotlb and iommu systems this tool does not model, by name.
    public var unknownEvents: [String: UInt64] = [:]
    /// Records of other systems (sched, irq, ...) that were skipped.
    public var otherRecords: UInt64 = 0
    /// Lost-event gaps and the counts they state; `uncountedGaps` had no count.
    public var lostGaps: UInt64 = 0
    public var lostEventsCounted: UInt64 = 0
    public var uncountedGaps: UInt64 = 0
    /// Records whose fields were out of bounds or self-contradictory.
    public var malformedRecords: UInt64 = 0
    /// Text lines that could not be read.
    public var unreadableLines: UInt64 = 0
    public var unreadableSamples: [UnreadableLine] = []
    public var stackRecords: UInt64 = 0
    /// Text lines too far out of time order to be put back in place (TimeOrderWindow).
    public var lateLines: UInt64 = 0

    public struct UnreadableLine: Sendable, Codable {
        public var line: Int
        public var text: String
        public var reason: String
    }

    public init() {}

    /// Earliest and latest, not first and last: time can step back within a CPU
    /// (a clock set back, text put together from several captures).
    mutating func noteTimestamp(_ ts: UInt64) {
        if ts < firstTimestamp ?? .max { firstTimestamp = ts }
        if ts > lastTimestamp ?? 0 || lastTimestamp == nil { lastTimestamp = ts }
    }
}

/// A bad input: every message names the file and says what is wrong with it.
public struct IngestError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var problem: String
    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }
    public var description: String { "\(path): \(problem)" }
}

/// A stream of normalized events from one trace. Reading is a single pass:
/// memory does not grow with the length of the trace.
public protocol DMAEventSource: AnyObject {
    var facts: TraceFacts { get }
    /// Calls `handler` for every event in time order and returns the pass's counters.
    func read(_ handler: (consuming DMAEvent) throws -> Void) throws -> IngestStats
    /// The caller keeps `count` other threads busy while `read` runs (the replay): a source may
    /// then do on its own thread what it would otherwise give threads of its own.
    func sharesCores(withBusyThreads count: Int)
    /// Module symbols of the trace's kallsyms: function name -> the modules defining it.
    /// nil when the input carries none (text traces name the module in the frame).
    func kallsymsModules() -> [String: [String]]?
}

extension DMAEventSource {
    public func kallsymsModules() -> [String: [String]]? { nil }
    public func sharesCores(withBusyThreads count: Int) {}
}

public enum TraceOpener {
    static let traceDatMagic: [UInt8] = [0x17, 0x08, 0x44, 0x74, 0x72, 0x61, 0x63, 0x69, 0x6e, 0x67]

    /// Opens a trace.dat, a perf.data or a text file (ftrace, `perf script`), deciding by
    /// content, not by name.
    public static func open(path: String, options: TextTraceReader.Options = .init()) throws -> DMAEventSource {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw IngestError(path: path, problem: "no such file")
        }
        if isDirectory.boolValue {
            throw IngestError(path: path, problem: "is a directory, not a trace file")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw IngestError(path: path, problem: "cannot be opened for reading (permission denied?)")
        }
        let head = (try? handle.read(upToCount: 4096)) ?? Data()
        try? handle.close()
        if head.isEmpty {
            throw IngestError(path: path, problem: "is empty")
        }
        if head.starts(with: traceDatMagic) {
            return try TraceDatReader(path: path)
        }
        if head.starts(with: PerfDataReader.magic) {
            return try PerfDataReader(path: path, options: options)
        }
        if head.starts(with: traceDatMagic.prefix(3)) {
            throw IngestError(path: path, problem: "has the trace.dat magic but a damaged header")
        }
        return try TextTraceReader(path: path, sniffed: head, options: options)
    }
}
