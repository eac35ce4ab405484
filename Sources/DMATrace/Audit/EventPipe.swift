import DequeModule
import Foundation

/// Decoding and replay on two cores: a reader thread decodes batches of events
/// into a bounded queue while the caller replays them. Memory stays bounded by
/// the queue's capacity, and events keep their order.
final class EventPipe: @unchecked Sendable {
    private let condition = NSCondition()
    private var batches = Deque<EventBatch>()
    private var finished = false
    private var failure: Error?
    private var stats: IngestStats?
    private let capacity: Int
    static let batchSize = 2048

    init(capacity: Int = 8) { self.capacity = capacity }

    /// Reads `source` on a new thread and hands `consume` every event in order, on this thread.
    static func run(_ source: DMAEventSource, consume: (consuming DMAEvent) -> Void) throws -> IngestStats {
        let pipe = EventPipe()
        // The replay, on this thread, keeps a core busy beside the reader's.
        source.sharesCores(withBusyThreads: 1)
        let box = SourceBox(source)
        let reader = Thread {
            var batch = EventBatch(capacity: batchSize)
            do {
                let stats = try box.source.read { event in
                    batch.append(consume event)
                    if batch.isFull {
                        pipe.put(batch)
                        batch = EventBatch(capacity: batchSize)
                    }
                }
                if !batch.isEmpty { pipe.put(batch) }
                pipe.finish(stats: stats, error: nil)
            } catch {
                pipe.finish(stats: nil, error: error)
            }
        }
        reader.stackSize = 8 << 20
        reader.start()
        while let batch = pipe.take() {
            while let event = batch.next() { consume(event) }
        }
        return try pipe.result()
    }

    private func put(_ batch: EventBatch) {
        condition.lock()
        while batches.count >= capacity { condition.wait() }
        batches.append(batch)
        condition.broadcast()
        condition.unlock()
    }

    private func take() -> EventBatch? {
        condition.lock()
        defer { condition.unlock() }
        while batches.isEmpty && !finished { condition.wait() }
        guard !batches.isEmpty else { return nil }
        let batch = batches.removeFirst()
        condition.broadcast()
        return batch
    }

    private func finish(stats: IngestStats?, error: Error?) {
        condition.lock()
        self.stats = stats
        failure = error
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    private func result() throws -> IngestStats {
        condition.lock()
        defer { condition.unlock() }
        if let failure { throw failure }
        return stats ?? IngestStats()
    }
}

/// The reader thread is the only user of the source while the pipe runs.
private final class SourceBox: @unchecked Sendable {
    let source: DMAEventSource
    init(_ source: DMAEventSource) { self.source = source }
}

/// Events on their way from the reader thread to the replay. The replay moves each one out
/// instead of copying it: iterating an array of events retained and released every event's
/// storage once more, on a cache line the other core had just written.
private final class EventBatch: @unchecked Sendable {
    private let base: UnsafeMutablePointer<DMAEvent>
    private let capacity: Int
    private var count = 0
    private var taken = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit {
        (base + taken).deinitialize(count: count - taken)
        base.deallocate()
    }

    var isEmpty: Bool { count == 0 }
    var isFull: Bool { count == capacity }

    func append(_ event: consuming DMAEvent) {
        precondition(count < capacity, "event batch overfilled")
        (base + count).initialize(to: event)
        count += 1
    }

    /// The next event, moved out of the batch; nil after the last.
    func next() -> DMAEvent? {
        guard taken < count else { return nil }
        defer { taken += 1 }
        return (base + taken).move()
    }
}
