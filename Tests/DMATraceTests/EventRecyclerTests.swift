import Testing
@testable import DMATrace

/// The decoder makes events in the storage of events nobody holds any more (EventRecycler):
/// an event still held anywhere must never change under its holder.
struct EventRecyclerTests {
    private static func mapKind(_ n: UInt64) -> DMAEventKind {
        .map(SingleMapEvent(api: .page, physAddr: n << 12, dmaAddr: n << 12, size: 4096, direction: .toDevice, attrs: []))
    }

    @Test func heldEventsKeepTheirFieldsAndReleasedOnesAreReused() {
        var recycler = EventRecycler()
        let total = EventRecycler.capacity * 3 + 123
        // Every seventh event is held, as a live mapping or a tombstone would hold it.
        var held: [(n: UInt64, event: DMAEvent)] = []
        for i in 0..<total {
            let n = UInt64(i)
            let event = recycler.make(timestamp: n, cpu: Int32(i % 4), pid: Int32(i), task: "task-\(i % 3)",
                                      device: i % 5 == 0 ? nil : "0000:00:03.0", kind: Self.mapKind(n))
            if i % 7 == 0 { held.append((n, event)) }
        }
        for (n, event) in held {
            #expect(event.timestamp == n)
            #expect(event.pid == Int32(n))
            #expect(event.task == "task-\(n % 3)")
            #expect(event.device == (n % 5 == 0 ? nil : "0000:00:03.0"))
            #expect(event.kind == Self.mapKind(n))
            #expect(event.stack == nil)
        }
        // Past the first round, every storage whose event was let go is written again.
        let secondRound = total - EventRecycler.capacity
        let stillHeldWhenReached = (0..<secondRound).filter { $0 % 7 == 0 }.count
        #expect(recycler.reused == secondRound - stillHeldWhenReached)
    }

    @Test func settingAFieldOfASharedEventLeavesTheOtherCopy() {
        var recycler = EventRecycler()
        let original = recycler.make(timestamp: 5, cpu: 0, pid: 1, task: "t", device: "d", kind: Self.mapKind(5))
        var copy = original
        copy.stack = KernelStack(frames: ["nvme_queue_rq"])
        copy.timestamp = 6
        #expect(original.stack == nil && original.timestamp == 5)
        #expect(copy.stack?.frames == ["nvme_queue_rq"] && copy.timestamp == 6)
        // A storage no other value holds is written in place.
        var alone = DMAEvent(timestamp: 1, cpu: 0, pid: 1, task: "t", device: nil, kind: .marker("x"))
        alone.timestamp = 2
        #expect(alone.timestamp == 2 && alone.kind == .marker("x"))
    }
}
