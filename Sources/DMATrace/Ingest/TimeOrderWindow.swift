/// Puts the events of a text trace back in timestamp order across CPUs before the model
/// sees them. `trace_pipe` (and tracefs `trace` read while tracing runs) prints the oldest
/// event it can see on any CPU; an event reserved earlier but committed later on another CPU
/// is printed after newer lines. Within a bound, such a line is moved back to its place.
///
/// Beyond the bound a line is not moved (that would need unbounded memory): it becomes an
/// `outOfOrder` event, which the model reports as a trace anomaly without applying it,
/// after a one-event gap on its CPU (the model has lost it from its real place).
public struct TimeOrderWindow {
    public struct Bound: Sendable, Equatable {
        /// A line may be at most this much older (ns) than the newest line read so far...
        public var span: UInt64
        /// ...and at most this many events may have been read after it.
        public var events: Int
        public init(span: UInt64, events: Int) {
            self.span = span
            self.events = events
        }
        /// 1 s and 16,384 events: late commits seen in practice are microseconds to
        /// milliseconds late, and 16,384 events are a few MB.
        public static let standard = Bound(span: 1_000_000_000, events: 16_384)
        /// Events pass in input order, unchecked.
        public static let off = Bound(span: 0, events: 0)
    }

    let bound: Bound
    /// Held events in time order from `head` on. Text is nearly sorted, so a new event goes
    /// at the end or a few places before it: insertion from the back costs O(1) per event,
    /// where a heap of these large values cost a dozen moves each.
    private var held: [DMAEvent] = []
    private var head = 0
    private var newest: UInt64 = 0
    /// Timestamp of the last event let out: nothing older may follow it.
    private var released: UInt64?
    /// Lines that came too late to be put back in place.
    private(set) var late: UInt64 = 0

    init(bound: Bound) { self.bound = bound }

    mutating func push(_ event: DMAEvent, line: Int, emit: (DMAEvent) throws -> Void) throws {
        guard bound.events > 0 else { return try emit(event) }
        if let r = released, event.timestamp < r {
            var moved = event
            moved.timestamp = r
            switch event.kind {
            case .marker, .lostEvents:
                // Harmless where they land; the gap keeps its CPU.
                try emit(moved)
            default:
                late += 1
                // The gap first: it opens after the CPU's last event the model saw, which is
                // before this one's true place (a CPU's own lines stay in order).
                try emit(DMAEvent(timestamp: r, cpu: event.cpu, pid: -1, task: "", device: nil, kind: .lostEvents(count: 1)))
                moved.kind = .outOfOrder(event.kind, timestamp: event.timestamp, line: line)
                try emit(moved)
            }
            return
        }
        // After every held event with the same or an earlier time: equal times keep input order.
        var i = held.count
        while i > head, held[i - 1].timestamp > event.timestamp { i -= 1 }
        // Nearly every event is the newest: appending skips the general insertion path.
        if i == held.count { held.append(event) } else { held.insert(event, at: i) }
        newest = max(newest, event.timestamp)
        while head < held.count, held.count - head > bound.events || newest - held[head].timestamp > bound.span {
            let e = held[head]
            head += 1
            released = e.timestamp
            try emit(e)
        }
        compact()
    }

    mutating func finish(emit: (DMAEvent) throws -> Void) throws {
        while head < held.count {
            let e = held[head]
            head += 1
            released = e.timestamp
            try emit(e)
        }
        held.removeAll()
        head = 0
    }

    /// Drops released events from the front once they are most of the array.
    private mutating func compact() {
        if head >= 4096 && head * 2 >= held.count {
            held.removeFirst(head)
            head = 0
        }
    }
}
