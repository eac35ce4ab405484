import DequeModule
import Foundation

/// Decoding and replay on two cores: a reader thread decodes batches of events
/// into a bounded queue while the caller replays them. Memory stays bounded by
/// the queue's capacity, and events keep their order.
final class EventPipe: @unchecked Sendable {
    private let condition = NSCondition()
    private var batches = Deque<[DMAEvent]>()
    private var finished = false
    private var failure: Error?
    private var stats: IngestStats?
    private let capacity: Int
    static let batchSize = 2048

    init(capacity: Int = 8) { self.capacity = capacity }

    /// Reads `source` on a new thread and hands `consume` every event in order, on this thread.
    static func run(_ source: DMAEventSource, consume: (DMAEvent) -> Void) throws -> IngestStats {
        let pipe = EventPipe()
        let box = SourceBox(source)
        let reader = Thread {
            var batch: [DMAEvent] = []
            batch.reserveCapacity(batchSize)
            do {
                let stats = try box.source.read { event in
                    batch.append(event)
                    if batch.count == batchSize {
                        pipe.put(batch)
                        batch.removeAll(keepingCapacity: true)
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
            for event in batch { consume(event) }
        }
        return try pipe.result()
    }

    private func put(_ batch: [DMAEvent]) {
        condition.lock()
        while batches.count >= capacity { condition.wait() }
        batches.append(batch)
        condition.broadcast()
        condition.unlock()
    }

    private func take() -> [DMAEvent]? {
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
