import DequeModule
import Foundation

/// A problem in one CPU's data, before the path is known.
struct CPUDataError: Error, CustomStringConvertible {
    let cpu: Int
    let problem: String
    var description: String { "CPU \(cpu)'s data: \(problem)" }
}

/// Decompressed chunk memory, freed when the last page of it is done.
final class ChunkBuffer: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer
    init(size: Int) { bytes = .allocate(byteCount: max(size, 1), alignment: 16) }
    deinit { bytes.deallocate() }
}

/// Decompresses one CPU's chunks on its own thread, ahead of the reader: CPUs decompress in
/// parallel, and memory stays at `readAhead` decompressed bytes per CPU (one chunk at least).
///
/// The two sides wake each other in batches: the thread stops at `readAhead` and resumes only
/// once the reader has taken half of it, and each side signals only when the other waits.
/// Trace-cmd's chunks are small (~27 KiB in the lab's nvme trace): a queue of four chunks,
/// refilled one at a time, cost two context switches a chunk (25,000 futex calls for 8,654
/// chunks) on machines with fewer cores than threads.
final class ChunkPrefetcher: @unchecked Sendable {
    private let condition = NSCondition()
    private var ready = Deque<(chunk: Result<ChunkBuffer, CPUDataError>, bytes: Int)>()
    private var queuedBytes = 0
    private var producerWaits = false
    private var consumerWaits = false
    private var done = false
    private var cancelled = false
    private let readAhead: Int

    /// Set when the chunks are decompressed on the reader's own thread instead.
    private let inline: ChunkDecompressor?

    /// `inline`: decompress on the reader's thread, when `take` asks, instead of on a thread of
    /// its own: with no core to spare, the decompression threads took turns with the replay on
    /// its core (the big v7 trace on two cores: 7-10% longer, its replay thread slowed by them).
    init(file: MappedFile, cpu: Int, chunks: [TraceDatLayout.Chunk], compression: Compression, readAhead: Int,
         inline: Bool = false) {
        self.readAhead = readAhead
        let source = ChunkDecompressor(file: file, cpu: cpu, chunks: chunks, compression: compression)
        if inline {
            self.inline = source
            return
        }
        self.inline = nil
        let thread = Thread { [self] in
            while let outcome = source.next() {
                guard put(outcome, bytes: source.lastSize) else { break }
                if case .failure = outcome { break }
            }
            condition.lock()
            done = true
            condition.broadcast()
            condition.unlock()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// False once the reader has gone.
    private func put(_ item: Result<ChunkBuffer, CPUDataError>, bytes: Int) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while queuedBytes >= readAhead && !ready.isEmpty && !cancelled {
            producerWaits = true
            condition.wait()
        }
        producerWaits = false
        if cancelled { return false }
        ready.append((item, bytes))
        queuedBytes += bytes
        if consumerWaits { condition.broadcast() }
        return true
    }

    /// The next chunk in order, nil after the last.
    func take() throws(CPUDataError) -> ChunkBuffer? {
        if let inline { return try inline.next()?.get() }
        condition.lock()
        defer { condition.unlock() }
        while ready.isEmpty && !done {
            consumerWaits = true
            condition.wait()
        }
        consumerWaits = false
        guard let item = ready.popFirst() else { return nil }
        queuedBytes -= item.bytes
        if producerWaits && queuedBytes <= readAhead / 2 { condition.broadcast() }
        return try item.chunk.get()
    }

    /// Lets the thread finish when the reader stops early.
    func cancel() {
        condition.lock()
        cancelled = true
        ready.removeAll()
        condition.broadcast()
        condition.unlock()
    }
}

/// Decompresses one CPU's chunks in order, handing their compressed bytes back to the kernel
/// as it goes.
final class ChunkDecompressor: @unchecked Sendable {
    private let file: MappedFile
    private let cpu: Int
    private let chunks: [TraceDatLayout.Chunk]
    private let decompressor: Decompressor
    private var released: MappedRelease
    private var index = 0
    /// The size of the chunk `next` last returned.
    private(set) var lastSize = 0

    init(file: MappedFile, cpu: Int, chunks: [TraceDatLayout.Chunk], compression: Compression) {
        self.file = file
        self.cpu = cpu
        self.chunks = chunks
        decompressor = Decompressor(compression)
        released = MappedRelease(from: chunks.first.map { $0.offset - 8 } ?? 0)
    }

    /// The next chunk, or why it does not decompress; nil after the last.
    func next() -> Result<ChunkBuffer, CPUDataError>? {
        guard index < chunks.count else { return nil }
        let i = index, chunk = chunks[i]
        index += 1
        let buffer = ChunkBuffer(size: chunk.size)
        let input = UnsafeRawBufferPointer(rebasing: file.bytes[chunk.offset..<(chunk.offset + chunk.compressedSize)])
        let outcome: Result<ChunkBuffer, CPUDataError>
        if let problem = decompressor.decompress(input, into: UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[0..<chunk.size])) {
            outcome = .failure(CPUDataError(cpu: cpu, problem: "compressed chunk \(i) of \(chunks.count) does not decompress (\(problem))"))
            index = chunks.count
        } else {
            outcome = .success(buffer)
        }
        // The compressed bytes are not needed again; handed back in steps, as the
        // uncompressed path does: each madvise interrupts the other threads' cores.
        let end = chunk.offset + chunk.compressedSize
        if i == chunks.count - 1 || end - released.upTo >= CPUStream.releaseStep { released.release(file, through: end) }
        lastSize = chunk.size
        return outcome
    }
}

/// Hands the pages of a read-only file mapping that one reader has gone past back to the
/// kernel (they stay in the page cache and refault if touched again), so resident memory
/// does not grow with the length of the trace. Only whole memory pages after `upTo`:
/// a page only partly ours may hold another CPU's data.
struct MappedRelease {
    private(set) var upTo: Int

    init(from start: Int) { upTo = start }

    mutating func release(_ file: MappedFile, through end: Int) {
        let granule = Int(getpagesize())
        let start = (upTo + granule - 1) / granule * granule
        let stop = end / granule * granule
        guard stop > start, let base = file.bytes.baseAddress else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), stop - start, MADV_DONTNEED)
        upTo = stop
    }
}

/// One CPU's records in order: its sub-buffers one after another, from the mapped file
/// (uncompressed data) or from decompressed chunks.
struct CPUStream {
    let cpu: Int
    private let file: MappedFile
    private let format: SubBufferFormat
    private let pageSize: Int
    /// Uncompressed data: the CPU's bytes in the file.
    private let region: Range<Int>
    private let prefetcher: ChunkPrefetcher?
    private var chunk: ChunkBuffer?
    private var chunkSize = 0
    private var chunkIndex = -1
    private let chunkSizes: [Int]
    /// Position of the current page: in `region`, or in the current chunk.
    private var pageStart: Int
    private var cursor: SubBufferCursor?
    private var pageNumber = -1
    /// Mapped pages this CPU has read and handed back.
    private var released: MappedRelease
    /// Resident mapped pages per CPU stay below this: memory does not grow with the trace.
    static let releaseStep = 4 << 20

    /// Decompressed bytes all CPUs together keep ready ahead of the reader.
    static let readAheadBudget = 8 << 20

    /// `streams`: how many CPUs are read together (they share `readAheadBudget`).
    /// `inlineDecompression`: see `ChunkPrefetcher`.
    init(file: MappedFile, data: TraceDatLayout.CPUData, format: SubBufferFormat, pageSize: Int, compression: Compression,
         streams: Int = 1, inlineDecompression: Bool = false) {
        cpu = data.cpu
        self.file = file
        self.format = format
        self.pageSize = pageSize
        region = data.offset..<(data.offset + data.size)
        released = MappedRelease(from: data.offset)
        if let chunks = data.chunks {
            chunkSizes = chunks.map(\.size)
            prefetcher = chunks.isEmpty ? nil : ChunkPrefetcher(file: file, cpu: data.cpu, chunks: chunks, compression: compression,
                                                                    readAhead: max(256 << 10, Self.readAheadBudget / max(streams, 1)),
                                                                    inline: inlineDecompression)
            pageStart = 0
        } else {
            chunkSizes = []
            prefetcher = nil
            pageStart = data.offset - pageSize
        }
    }

    func cancel() { prefetcher?.cancel() }



    /// The next record of this CPU, nil at its end. Its bytes stay valid until the next call.
    mutating func next() throws(CPUDataError) -> RingRecord? {
        while true {
            if cursor != nil {
                do {
                    if let record = try cursor!.nextRecord() { return record }
                } catch {
                    throw CPUDataError(cpu: cpu, problem: "page \(pageNumber): \(error)")
                }
            }
            guard let page = try nextPage() else { return nil }
            do {
                cursor = try SubBufferCursor(page: page, format: format)
            } catch {
                throw CPUDataError(cpu: cpu, problem: "page \(pageNumber): \(error)")
            }
        }
    }

    private mutating func nextPage() throws(CPUDataError) -> UnsafeRawBufferPointer? {
        pageNumber += 1
        guard let prefetcher else {
            // libtracecmd walks page_size steps while data remains (trace-input.c get_next_page).
            pageStart += pageSize
            guard pageStart < region.upperBound else {
                released.release(file, through: region.upperBound)
                return nil
            }
            if pageStart - released.upTo >= Self.releaseStep { released.release(file, through: pageStart) }
            let end = min(pageStart + pageSize, region.upperBound)
            return UnsafeRawBufferPointer(rebasing: file.bytes[pageStart..<end])
        }
        pageStart += pageSize
        if chunk == nil || pageStart >= chunkSize {
            chunk = nil
            guard let next = try prefetcher.take() else { return nil }
            chunkIndex += 1
            chunk = next
            chunkSize = chunkSizes[chunkIndex]
            pageStart = 0
        }
        let end = min(pageStart + pageSize, chunkSize)
        return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(chunk!.bytes)[pageStart..<end])
    }
}

/// Every CPU's records in one time order: the CPU whose next record is earliest first (ties:
/// the lower CPU, as tracecmd_peek_next_data does), in O(log n) for any number of CPUs.
///
/// The streams, their heads and the heap live in raw storage: as Swift arrays, each record
/// cost uniqueness and bounds checks on all three (a fifth of the reader's instructions).
final class RecordMerge {
    /// The top stream's next record and its timestamp in the trace's clock.
    struct Head {
        let stream: Int
        let cpu: Int32
        let record: RingRecord
        let timestamp: UInt64
    }

    private let streams: UnsafeMutablePointer<CPUStream>
    private let streamCount: Int
    /// Each stream's next record; meaningful for the streams in the heap.
    private let heads: UnsafeMutablePointer<RingRecord>
    /// The streams that have a next record: (timestamp in the trace's clock, stream index).
    private let heap: UnsafeMutablePointer<(ts: UInt64, stream: Int)>
    private var live = 0
    private let offset: UInt64

    /// `offset`: added to every timestamp (the file's tsc offset), wrapping as the kernel's does.
    init(_ streams: [CPUStream], timestampOffset offset: UInt64) throws(CPUDataError) {
        streamCount = streams.count
        self.streams = .allocate(capacity: max(streamCount, 1))
        self.streams.initialize(from: streams, count: streamCount)
        heads = .allocate(capacity: max(streamCount, 1))
        heap = .allocate(capacity: max(streamCount, 1))
        self.offset = offset
        for i in 0..<streamCount {
            guard let h = try self.streams[i].next() else { continue }
            (heads + i).initialize(to: h)
            insert(stream: i, ts: h.timestamp &+ offset)
        }
    }

    deinit {
        for i in 0..<streamCount { streams[i].cancel() }
        streams.deinitialize(count: streamCount)
        streams.deallocate()
        heads.deallocate()
        heap.deallocate()
    }

    /// The earliest record, nil when every stream has ended.
    @inline(__always)
    var top: Head? {
        guard live > 0 else { return nil }
        let i = heap[0].stream
        return Head(stream: i, cpu: Int32(truncatingIfNeeded: streams[i].cpu), record: heads[i], timestamp: heap[0].ts)
    }

    /// Replaces the top stream's head with its next record and returns it, without re-sorting:
    /// the caller may look at it (and take it too) before `settle()`.
    @inline(__always)
    func pull() throws(CPUDataError) -> RingRecord? {
        let i = heap[0].stream
        guard let h = try streams[i].next() else {
            ended = true
            return nil
        }
        heads[i] = h
        heap[0].ts = h.timestamp &+ offset
        return h
    }

    /// The top stream ran out during `pull`.
    private var ended = false

    /// Puts the top stream back in order after `pull`.
    func settle() {
        if ended {
            ended = false
            live -= 1
            guard live > 0 else { return }
            heap[0] = heap[live]
        }
        var i = 0
        while true {
            let l = 2 * i + 1
            if l >= live { return }
            var m = l
            if l + 1 < live, Self.less(heap[l + 1], heap[l]) { m = l + 1 }
            guard Self.less(heap[m], heap[i]) else { return }
            swap(&heap[i], &heap[m])
            i = m
        }
    }

    /// Moves the top stream on.
    @inline(__always)
    func advance() throws(CPUDataError) {
        _ = try pull()
        settle()
    }

    @inline(__always)
    private static func less(_ a: (ts: UInt64, stream: Int), _ b: (ts: UInt64, stream: Int)) -> Bool {
        a.ts < b.ts || (a.ts == b.ts && a.stream < b.stream)
    }

    private func insert(stream: Int, ts: UInt64) {
        heap[live] = (ts, stream)
        var i = live
        live += 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.less(heap[i], heap[parent]) else { break }
            swap(&heap[i], &heap[parent])
            i = parent
        }
    }
}
