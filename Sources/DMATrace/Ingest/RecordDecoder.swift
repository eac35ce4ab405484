import Foundation
import CTraceCmd
import CTraceShim

/// One field of an event format, resolved once per event type.
struct FieldLayout {
    let offset: Int
    let size: Int
    /// `__data_loc` / `__rel_loc`: the field holds a (length << 16 | offset) word.
    let isDynamic: Bool
    let isRelative: Bool
    let isSigned: Bool
    /// Element width of an array field, from its C type.
    let elementSize: Int

    init(_ f: UnsafeMutablePointer<tep_format_field>, longSize: Int) {
        let flags = UInt32(truncatingIfNeeded: f.pointee.flags)
        offset = Int(f.pointee.offset)
        size = Int(f.pointee.size)
        isDynamic = flags & TEP_FIELD_IS_DYNAMIC.rawValue != 0
        isRelative = flags & TEP_FIELD_IS_RELATIVE.rawValue != 0
        isSigned = flags & TEP_FIELD_IS_SIGNED.rawValue != 0
        let type = f.pointee.type.map { String(cString: $0) } ?? ""
        elementSize = FieldLayout.elementSize(ofType: type, declared: Int(f.pointee.elementsize), longSize: longSize)
    }

    static func elementSize(ofType type: String, declared: Int, longSize: Int) -> Int {
        if type.contains("u64") || type.contains("s64") || type.contains("long long") || type.contains("dma_addr_t")
            || type.contains("phys_addr_t") { return 8 }
        if type.contains("long") { return longSize }
        if type.contains("u32") || type.contains("s32") || type.contains("int") { return 4 }
        if type.contains("u16") || type.contains("short") { return 2 }
        if type.contains("char") || type.contains("u8") || type.contains("bool") { return 1 }
        return declared > 0 ? declared : 8
    }
}

/// A record's payload with bounds-checked accessors: a flipped bit in a ring
/// buffer page still "iterates", so no length or offset is trusted.
struct RecordView {
    let base: UnsafeRawPointer
    let size: Int
    let swap: Bool

    @inline(__always)
    func unsigned(_ f: FieldLayout?) -> UInt64? {
        guard let f else { return nil }
        return unsigned(at: f.offset, width: f.size)
    }

    func signed(_ f: FieldLayout?) -> Int64? {
        guard let f, let raw = unsigned(at: f.offset, width: f.size) else { return nil }
        switch f.size {
        case 1: return Int64(Int8(truncatingIfNeeded: raw))
        case 2: return Int64(Int16(truncatingIfNeeded: raw))
        case 4: return Int64(Int32(truncatingIfNeeded: raw))
        default: return Int64(bitPattern: raw)
        }
    }

    @inline(__always)
    func unsigned(at offset: Int, width: Int) -> UInt64? {
        guard offset >= 0, width > 0, offset + width <= size else { return nil }
        let p = base + offset
        switch width {
        case 1: return UInt64(p.load(as: UInt8.self))
        case 2:
            let v = p.loadUnaligned(as: UInt16.self)
            return UInt64(swap ? v.byteSwapped : v)
        case 4:
            let v = p.loadUnaligned(as: UInt32.self)
            return UInt64(swap ? v.byteSwapped : v)
        case 8:
            let v = p.loadUnaligned(as: UInt64.self)
            return swap ? v.byteSwapped : v
        default: return nil
        }
    }

    /// Byte range of a dynamic field's payload, checked against the record.
    @inline(__always)
    func dynamicRange(_ f: FieldLayout?) -> Range<Int>? {
        guard let f, f.isDynamic, let word = unsigned(at: f.offset, width: 4) else { return nil }
        var start = Int(word & 0xffff)
        let length = Int(word >> 16)
        if f.isRelative { start += f.offset + f.size }
        guard start >= 0, start + length <= size else { return nil }
        return start..<(start + length)
    }

    func array(_ f: FieldLayout?) -> [UInt64]? {
        guard let f, let range = dynamicRange(f) else { return nil }
        let width = f.elementSize
        guard width > 0 else { return nil }
        let count = range.count / width
        var out = [UInt64]()
        out.reserveCapacity(count)
        var at = range.lowerBound
        for _ in 0..<count {
            guard let v = unsigned(at: at, width: width) else { return nil }
            out.append(v)
            at += width
        }
        return out
    }

    /// A `__data_loc char[]` string, or a fixed `char[]` running to the record's end.
    func string(_ f: FieldLayout?) -> String? {
        stringBytes(f).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The bytes of such a string, up to its NUL.
    @inline(__always)
    func stringBytes(_ f: FieldLayout?) -> UnsafeRawBufferPointer? {
        guard let f else { return nil }
        let range: Range<Int>
        if f.isDynamic {
            guard let r = dynamicRange(f) else { return nil }
            range = r
        } else {
            guard f.offset >= 0, f.offset <= size else { return nil }
            range = f.offset..<size
        }
        let start = base + range.lowerBound
        let end = memchr(start, 0, range.count).map { UnsafeRawPointer($0) - start } ?? range.count
        return UnsafeRawBufferPointer(start: start, count: end)
    }
}

/// The fields one event type needs, looked up by name once. A class so the
/// per-record lookup hands out a reference instead of copying thirty fields.
final class EventLayout {
    let known: KnownEvent?
    let name: String
    let isDMASystem: Bool
    var device, physAddr, dmaAddr, addr, size, dir, attrs: FieldLayout?
    var physAddrs, dmaAddrs, lengths, addrs: FieldLayout?
    var fullNents, fullEnts, nents, ents, truncated, err: FieldLayout?
    var virtAddr, dmaMask, devAddr, force: FieldLayout?
    var iova, paddr, unmappedSize, driver, flags, gid: FieldLayout?
    var buf, caller, stackSize: FieldLayout?
    /// Where a single map or unmap keeps its numbers, when they sit at fixed offsets with the
    /// widths every kernel since 6.12 writes: read with one bounds check instead of one per field.
    private(set) var fixedSingle: FixedSingle?

    struct FixedSingle {
        /// -1 for an unmap, which traces no physical address.
        let phys: Int
        let dma: Int
        let size: Int
        let dir: Int
        let attrs: Int
        /// The record must be at least this long.
        let end: Int
    }

    init(event: UnsafeMutablePointer<tep_event>, longSize: Int) {
        let system = event.pointee.system.map { String(cString: $0) } ?? ""
        name = event.pointee.name.map { String(cString: $0) } ?? "?"
        isDMASystem = KnownEvent.dmaSystems.contains(system)
        known = KnownEvent.classify(system: system, name: name)
        func field(_ n: String) -> FieldLayout? {
            tep_find_field(event, n).map { FieldLayout($0, longSize: longSize) }
        }
        guard known != nil else { return }
        device = field("device") ?? field("dev_name")
        physAddr = field("phys_addr"); dmaAddr = field("dma_addr"); addr = field("addr")
        size = field("size"); dir = field("dir"); attrs = field("attrs")
        physAddrs = field("phys_addrs"); dmaAddrs = field("dma_addrs"); lengths = field("lengths")
        addrs = field("addrs")
        fullNents = field("full_nents"); fullEnts = field("full_ents")
        nents = field("nents"); ents = field("ents"); truncated = field("truncated"); err = field("err")
        virtAddr = field("virt_addr"); dmaMask = field("dma_mask"); devAddr = field("dev_addr")
        force = field("force")
        iova = field("iova"); paddr = field("paddr"); unmappedSize = field("unmapped_size")
        driver = field("driver"); flags = field("flags"); gid = field("gid")
        buf = field("buf"); caller = field("caller"); stackSize = field("size")
        fixedSingle = Self.fixedSingle(known, physAddr: physAddr, dmaAddr: dmaAddr, addr: addr, size: size, dir: dir, attrs: attrs)
    }

    private static func fixedSingle(_ known: KnownEvent?, physAddr: FieldLayout?, dmaAddr: FieldLayout?, addr: FieldLayout?,
                                    size: FieldLayout?, dir: FieldLayout?, attrs: FieldLayout?) -> FixedSingle? {
        let isMap: Bool, dma: FieldLayout?
        switch known {
        case .mapSingle: (isMap, dma) = (true, dmaAddr)
        // Its dma address is `addr` (`dma_addr` in a few trees), as the general path reads it.
        case .unmapSingle: (isMap, dma) = (false, addr ?? dmaAddr)
        default: return nil
        }
        func plain(_ f: FieldLayout?, _ width: Int) -> Int? {
            guard let f, !f.isDynamic, f.size == width, f.offset >= 0 else { return nil }
            return f.offset
        }
        guard let dma = plain(dma, 8), let size = plain(size, 8), let dir = plain(dir, 4), let attrs = plain(attrs, 8)
        else { return nil }
        let phys: Int
        if isMap {
            guard let p = plain(physAddr, 8) else { return nil }
            phys = p
        } else {
            phys = -1
        }
        return FixedSingle(phys: phys, dma: dma, size: size, dir: dir, attrs: attrs,
                           end: max(phys + 8, dma + 8, size + 8, dir + 4, attrs + 8))
    }
}

/// Turns libtracecmd records into normalized events (the Perfetto "parser"
/// stage): no domain decisions here, only faithful decoding.
struct RecordDecoder {
    let tep: OpaquePointer
    /// Every layout made, holding them; `layoutOfID` names them unretained, indexed by event type
    /// id (small integers in every trace.dat seen): a map and its unmap alternate types, so a
    /// cache of the last one missed on nearly every record, and each miss took and dropped a
    /// reference (two atomic operations) besides.
    private var madeLayouts: [EventLayout] = []
    private var layoutOfID: [LayoutSlot] = []
    private enum LayoutSlot {
        case notLookedUp
        case none
        case layout(Unmanaged<EventLayout>)
    }
    private var comms: [Int32: String] = [:]
    /// Device names by their bytes: a trace has a handful, seen millions of times.
    private var devices: [(bytes: [UInt8], name: String)] = []
    private let lastDevice = LastDevice()
    /// A few tasks issue nearly all DMA calls, interleaved across CPUs: a direct-mapped
    /// pid -> comm table answers them without hashing.
    private var recentTasks = [(pid: Int32, comm: String)](repeating: (.min, ""), count: 256)
    /// Where every record keeps its event id and pid (the format's common fields).
    private let typeField: (offset: Int, size: Int)?
    private let pidField: (offset: Int, size: Int)?
    private var symbols: [UInt64: (text: String, span: UInt64)] = [:]
    private let swap: Bool
    private let longSize: Int
    private let stackEventID: Int32?
    var hasKernelStacks: Bool { stackEventID != nil }
    private var formatBuffer = [CChar](repeating: 0, count: 4096)
    private var recycler = EventRecycler()

    init(tep: OpaquePointer) {
        self.tep = tep
        swap = tep_is_file_bigendian(tep) != tep_is_local_bigendian(tep)
        let ls = Int(tep_get_long_size(tep))
        longSize = ls > 0 ? ls : 8
        stackEventID = tep_find_event_by_name(tep, "ftrace", "kernel_stack").map { $0.pointee.id }
        var type: (Int, Int)?, pid: (Int, Int)?
        if tep_get_events_count(tep) > 0, let list = tep_list_events(tep, TEP_EVENT_SORT_ID), let first = list[0] {
            func common(_ name: String) -> (Int, Int)? {
                guard let f = tep_find_common_field(first, name), [1, 2, 4, 8].contains(Int(f.pointee.size)) else { return nil }
                return (Int(f.pointee.offset), Int(f.pointee.size))
            }
            type = common("common_type")
            pid = common("common_pid")
        }
        typeField = type
        pidField = pid
    }

    /// The record's event id, read with the bounds check libtraceevent's tep_data_type lacks.
    @inline(__always)
    func type(of record: UnsafeMutablePointer<tep_record>) -> Int32 {
        guard let f = typeField else { return tep_data_type(tep, record) }
        return view(record).unsigned(at: f.offset, width: f.size).map { Int32(truncatingIfNeeded: $0) } ?? -1
    }

    @inline(__always)
    func pid(of record: UnsafeMutablePointer<tep_record>) -> Int32 {
        guard let f = pidField else { return tep_data_pid(tep, record) }
        return view(record).unsigned(at: f.offset, width: f.size).map { Int32(truncatingIfNeeded: $0) } ?? -1
    }

    @inline(__always)
    func view(_ record: UnsafeMutablePointer<tep_record>) -> RecordView {
        RecordView(base: UnsafeRawPointer(record.pointee.data), size: Int(max(record.pointee.size, 0)), swap: swap)
    }

    @inline(__always)
    func isKernelStack(_ record: UnsafeMutablePointer<tep_record>) -> Bool {
        guard let stackEventID, record.pointee.data != nil else { return false }
        return type(of: record) == stackEventID
    }

    /// The layout of event type `id`, unretained: `madeLayouts` holds it as long as the decoder.
    @inline(__always)
    private mutating func layout(for id: Int32) -> Unmanaged<EventLayout>? {
        let i = Int(id)
        if i >= 0, i < layoutOfID.count {
            switch layoutOfID[i] {
            case .layout(let l): return l
            case .none: return nil
            case .notLookedUp: break
            }
        }
        return lookUpLayout(id)
    }

    private mutating func lookUpLayout(_ id: Int32) -> Unmanaged<EventLayout>? {
        let i = Int(id)
        guard i >= 0, i < 1 << 16 else {
            // Out of any table: made again on every such record (a corrupted id), kept alive by
            // the list like the others, bounded.
            guard madeLayouts.count < 4096, let made = tep_find_event(tep, id).map({ EventLayout(event: $0, longSize: longSize) })
            else { return nil }
            madeLayouts.append(made)
            return .passUnretained(made)
        }
        if i >= layoutOfID.count { layoutOfID += [LayoutSlot](repeating: .notLookedUp, count: i + 1 - layoutOfID.count) }
        guard let made = tep_find_event(tep, id).map({ EventLayout(event: $0, longSize: longSize) }) else {
            layoutOfID[i] = .none
            return nil
        }
        madeLayouts.append(made)
        layoutOfID[i] = .layout(.passUnretained(made))
        return .passUnretained(made)
    }

    private mutating func comm(_ pid: Int32) -> String {
        let slot = Int(UInt32(bitPattern: pid) & 255)
        if recentTasks[slot].pid == pid { return recentTasks[slot].comm }
        let c: String
        if let known = comms[pid] {
            c = known
        } else {
            c = pid == 0 ? "<idle>" : (tep_data_comm_from_pid(tep, pid).map { String(cString: $0) } ?? "<...>")
            comms[pid] = c
        }
        recentTasks[slot] = (pid, c)
        return c
    }

    mutating func decode(_ record: UnsafeMutablePointer<tep_record>, stats: inout IngestStats) -> DMAEvent? {
        guard record.pointee.data != nil, record.pointee.size > 0 else {
            stats.malformedRecords += 1
            return nil
        }
        let eventID = type(of: record)
        guard let layout = layout(for: eventID) else {
            stats.malformedRecords += 1
            return nil
        }
        return layout._withUnsafeGuaranteedRef { decode(record, layout: $0, stats: &stats) }
    }

    private mutating func decode(_ record: UnsafeMutablePointer<tep_record>, layout: EventLayout,
                                 stats: inout IngestStats) -> DMAEvent? {
        guard let known = layout.known else {
            if layout.isDMASystem {
                stats.unknownEvents[layout.name, default: 0] += 1
            } else {
                stats.otherRecords += 1
            }
            return nil
        }
        let r = view(record)
        let taskID = pid(of: record)
        guard let kind = Self.kind(known, layout, r, decoder: &self, record: record) else {
            stats.malformedRecords += 1
            return nil
        }
        if case .kernelStack = known { return nil }
        return recycler.make(timestamp: record.pointee.ts, cpu: Int32(record.pointee.cpu), pid: taskID,
                             task: comm(taskID), device: device(layout, r), kind: kind)
    }

    private mutating func device(_ layout: EventLayout, _ r: RecordView) -> String? {
        // Runs of one device's events are common: the field's bytes as the record holds them
        // (length from its __data_loc word, NUL and all) are compared with the last device's
        // first, without looking for the NUL; the same bytes name the same device.
        var raw: UnsafeRawBufferPointer?
        if let f = layout.device, f.isDynamic, let range = r.dynamicRange(f) {
            let field = UnsafeRawBufferPointer(start: r.base + range.lowerBound, count: range.count)
            if let name = lastDevice.name(ifRaw: field) { return name }
            raw = field
        }
        guard let bytes = r.stringBytes(layout.device), !bytes.isEmpty else { return nil }
        if let name = lastDevice.name(ifNamed: bytes) {
            if let raw { lastDevice.rememberRaw(raw) }
            return name
        }
        func same(_ i: Int) -> Bool {
            devices[i].bytes.count == bytes.count
                && devices[i].bytes.withUnsafeBytes { memcmp($0.baseAddress!, bytes.baseAddress!, bytes.count) == 0 }
        }
        let name: String
        if let i = devices.indices.first(where: same) {
            name = devices[i].name
        } else {
            name = String(decoding: bytes, as: UTF8.self)
            // Bounded: a corrupted trace could make every record's name different.
            if devices.count >= 64 { devices.removeFirst() }
            devices.append((Array(bytes), name))
        }
        lastDevice.remember(bytes, name)
        if let raw { lastDevice.rememberRaw(raw) }
        return name
    }

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    private static func kind(_ known: KnownEvent, _ l: EventLayout, _ r: RecordView,
                             decoder: inout RecordDecoder,
                             record: UnsafeMutablePointer<tep_record>) -> DMAEventKind? {
        if let f = l.fixedSingle, !r.swap, r.size >= f.end {
            // The same event the general path below makes, from the same bytes.
            let p = r.base
            let dma = p.loadUnaligned(fromByteOffset: f.dma, as: UInt64.self)
            let size = p.loadUnaligned(fromByteOffset: f.size, as: UInt64.self)
            let direction = DMADirection(kernelValue: UInt64(p.loadUnaligned(fromByteOffset: f.dir, as: UInt32.self)))
            let attrs = DMAAttributes(rawValue: p.loadUnaligned(fromByteOffset: f.attrs, as: UInt64.self))
            switch known {
            case .mapSingle(let api):
                return .map(SingleMapEvent(api: api.resolved(by: attrs), physAddr: p.loadUnaligned(fromByteOffset: f.phys, as: UInt64.self),
                                           dmaAddr: dma, size: size, direction: direction, attrs: attrs))
            case .unmapSingle(let api):
                return .unmap(SingleUnmapEvent(api: api.resolved(by: attrs), dmaAddr: dma, size: size, direction: direction, attrs: attrs))
            default:
                break
            }
        }
        let direction = r.unsigned(l.dir).flatMap { DMADirection(kernelValue: $0) }
        let attrs = DMAAttributes(rawValue: r.unsigned(l.attrs) ?? 0)
        switch known {
        case .mapSingle(let api):
            guard let phys = r.unsigned(l.physAddr), let dma = r.unsigned(l.dmaAddr),
                  let size = r.unsigned(l.size) else { return nil }
            return .map(SingleMapEvent(api: api.resolved(by: attrs), physAddr: phys, dmaAddr: dma, size: size,
                                       direction: direction, attrs: attrs))
        case .unmapSingle(let api):
            guard let dma = r.unsigned(l.addr) ?? r.unsigned(l.dmaAddr), let size = r.unsigned(l.size) else { return nil }
            return .unmap(SingleUnmapEvent(api: api.resolved(by: attrs), dmaAddr: dma, size: size, direction: direction, attrs: attrs))
        case .mapSG:
            guard let phys = r.array(l.physAddrs), let dma = r.array(l.dmaAddrs),
                  let lengths = r.array(l.lengths) else { return nil }
            let nents = r.signed(l.fullNents) ?? r.signed(l.nents) ?? Int64(phys.count)
            let ents = r.signed(l.fullEnts) ?? r.signed(l.ents) ?? Int64(dma.count)
            return .mapSG(SGMapEvent(inputEntries: Int(clamping: nents), mappedEntries: Int(clamping: ents),
                                     physAddrs: phys, dmaAddrs: dma, lengths: lengths,
                                     truncated: (r.unsigned(l.truncated) ?? 0) != 0,
                                     direction: direction, attrs: attrs))
        case .mapSGError:
            let phys = r.array(l.physAddrs) ?? []
            return .mapSGError(SGMapErrorEvent(physAddrs: phys, error: r.signed(l.err) ?? 0,
                                               direction: direction, attrs: attrs))
        case .unmapSG:
            guard let phys = r.array(l.addrs) ?? r.array(l.physAddrs) else { return nil }
            return .unmapSG(SGUnmapEvent(physAddrs: phys, direction: direction, attrs: attrs))
        case .syncSingle(let target):
            guard let dma = r.unsigned(l.dmaAddr), let size = r.unsigned(l.size) else { return nil }
            return .sync(SyncEvent(target: target, scatterGather: false, dmaAddrs: [dma], lengths: [size],
                                   direction: direction))
        case .syncSG(let target):
            guard let dma = r.array(l.dmaAddrs), let lengths = r.array(l.lengths) else { return nil }
            return .sync(SyncEvent(target: target, scatterGather: true, dmaAddrs: dma, lengths: lengths,
                                   direction: direction))
        case .alloc(let api), .allocError(let api):
            guard let size = r.unsigned(l.size) else { return nil }
            let failed: Bool
            if case .allocError = known { failed = true } else { failed = false }
            return .alloc(AllocEvent(api: api, cpuAddr: r.unsigned(l.virtAddr).map { .value($0) } ?? .absent,
                                     dmaAddr: r.unsigned(l.dmaAddr) ?? 0, size: size, direction: direction,
                                     attrs: attrs,
                                     physAddrs: r.array(l.physAddrs) ?? r.unsigned(l.physAddr).map { [$0] } ?? [],
                                     failed: failed))
        case .free(let api):
            guard let size = r.unsigned(l.size) else { return nil }
            return .free(FreeEvent(api: api, cpuAddr: r.unsigned(l.virtAddr).map { .value($0) } ?? .absent,
                                   dmaAddr: r.unsigned(l.dmaAddr) ?? 0, size: size, direction: direction,
                                   attrs: attrs,
                                   physAddrs: r.array(l.physAddrs) ?? r.unsigned(l.physAddr).map { [$0] } ?? []))
        case .bounce:
            guard let orig = r.unsigned(l.devAddr), let size = r.unsigned(l.size) else { return nil }
            // `force` was an enum (NORMAL, FORCE, NO_FORCE) before it became a bool: 1 means forced in both.
            return .bounce(BounceEvent(origAddr: orig, size: size, dmaMask: r.unsigned(l.dmaMask) ?? 0,
                                       forced: r.unsigned(l.force) == 1))
        case .iommuMap:
            guard let iova = r.unsigned(l.iova), let size = r.unsigned(l.size) else { return nil }
            return .iommuMap(IOMMUMapEvent(iova: iova, physAddr: r.unsigned(l.paddr) ?? 0, size: size))
        case .iommuUnmap:
            guard let iova = r.unsigned(l.iova), let size = r.unsigned(l.size) else { return nil }
            return .iommuUnmap(IOMMUUnmapEvent(iova: iova, size: size, unmappedSize: r.unsigned(l.unmappedSize) ?? size))
        case .iommuFault:
            guard let iova = r.unsigned(l.iova) else { return nil }
            return .iommuFault(IOMMUFaultEvent(driver: r.string(l.driver) ?? "", iova: iova, flags: r.signed(l.flags) ?? 0))
        case .iommuGroup(let change):
            return .iommuGroup(IOMMUGroupEvent(change: change, groupID: r.signed(l.gid)))
        case .print:
            guard var text = r.string(l.buf) else { return nil }
            while text.last == "\n" { text.removeLast() }
            return .marker(text)
        case .bprint:
            return .marker(decoder.formatted(record))
        case .kernelStack:
            return .marker("")
        }
    }

    private mutating func formatted(_ record: UnsafeMutablePointer<tep_record>) -> String {
        let count = Int32(formatBuffer.count)
        let n = TraceDatReader.libraryLock.withLock {
            formatBuffer.withUnsafeMutableBufferPointer { buf in
                dmatrace_format_info(tep, record, buf.baseAddress, count)
            }
        }
        guard n > 0 else { return "" }
        var text = formatBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        while text.last == "\n" { text.removeLast() }
        return text
    }

    /// Decodes one record payload that did not come from libtracecmd (the fuzz targets
    /// feed bytes this way): the same path as a record read from the file.
    mutating func decode(payload: UnsafeRawBufferPointer, timestamp: UInt64, cpu: Int32,
                         stats: inout IngestStats) -> DMAEvent? {
        withRecord(payload, timestamp: timestamp, cpu: cpu) { d, r in d.decode(r, stats: &stats) }
    }

    mutating func decodeStack(payload: UnsafeRawBufferPointer) -> KernelStack? {
        withRecord(payload, timestamp: 0, cpu: 0) { d, r in d.decodeStack(r) }
    }

    private mutating func withRecord<T>(_ payload: UnsafeRawBufferPointer, timestamp: UInt64, cpu: Int32,
                                        _ body: (inout RecordDecoder, UnsafeMutablePointer<tep_record>) -> T) -> T {
        var record = tep_record()
        record.ts = timestamp
        record.cpu = cpu
        record.size = Int32(clamping: payload.count)
        record.record_size = record.size
        record.data = UnsafeMutableRawPointer(mutating: payload.baseAddress)
        return withUnsafeMutablePointer(to: &record) { body(&self, $0) }
    }

    /// `caller` runs to the end of the record: unsigned longs, ended by -1 or by `size`.
    mutating func decodeStack(_ record: UnsafeMutablePointer<tep_record>) -> KernelStack? {
        guard let id = stackEventID, let layout = layout(for: id)?.takeUnretainedValue(), let caller = layout.caller
        else { return nil }
        let r = view(record)
        let available = max(0, (r.size - caller.offset) / longSize)
        var limit = available
        if let declared = r.signed(layout.stackSize), declared > 0, declared < available { limit = Int(declared) }
        var frames: [String] = []
        var spans: [UInt64] = []
        frames.reserveCapacity(limit)
        spans.reserveCapacity(limit)
        for i in 0..<limit {
            guard let addr = r.unsigned(at: caller.offset + i * longSize, width: longSize) else { break }
            let terminator: UInt64 = longSize == 8 ? UInt64.max : UInt64(UInt32.max)
            if addr == terminator || addr == 0 { break }
            let s = symbol(addr)
            frames.append(s.text)
            spans.append(s.span)
        }
        return frames.isEmpty ? nil : KernelStack(frames: frames, symbolSpans: spans)
    }

    /// Looked up once per distinct address (stacks repeat).
    private mutating func symbol(_ addr: UInt64) -> (text: String, span: UInt64) {
        if let s = symbols[addr] { return s }
        var name: UnsafePointer<CChar>?
        var start: UInt64 = 0
        var span: UInt = 0
        let s: (text: String, span: UInt64)
        if tep_find_function_info(tep, addr, &name, &start, &span) != 0, let name {
            s = (String(cString: name) + "+0x" + String(addr &- start, radix: 16), UInt64(span))
        } else {
            s = ("0x" + String(addr, radix: 16), 0)
        }
        symbols[addr] = s
        return s
    }
}

/// The last device name a decoder read, its bytes compared in place: an array's copy and
/// closure per record cost ~100 instructions. Shared by copies of a decoder, which is harmless
/// (it only caches what a name's bytes spell), and each reader makes and uses its own decoder
/// on one thread.
private final class LastDevice {
    private var storage = UnsafeMutableRawPointer.allocate(byteCount: 32, alignment: 1)
    private var capacity = 32
    private var count = 0
    private var name: String?
    /// The last device's field as its record held it, when at most 16 bytes (PCI names take 13):
    /// the first and last 8 bytes, overlapping below 16, compared as two words.
    private var rawCount = -1
    private var rawHead: UInt64 = 0
    private var rawTail: UInt64 = 0

    deinit { storage.deallocate() }

    @inline(__always)
    private static func words(_ raw: UnsafeRawBufferPointer) -> (UInt64, UInt64)? {
        guard raw.count >= 8, raw.count <= 16, let base = raw.baseAddress else { return nil }
        return (base.loadUnaligned(as: UInt64.self), base.loadUnaligned(fromByteOffset: raw.count - 8, as: UInt64.self))
    }

    @inline(__always)
    func name(ifRaw raw: UnsafeRawBufferPointer) -> String? {
        guard raw.count == rawCount, let (head, tail) = Self.words(raw), head == rawHead, tail == rawTail else { return nil }
        return name
    }

    /// The raw field that named the device `remember` was last told.
    func rememberRaw(_ raw: UnsafeRawBufferPointer) {
        guard let (head, tail) = Self.words(raw) else {
            rawCount = -1
            return
        }
        (rawCount, rawHead, rawTail) = (raw.count, head, tail)
    }

    @inline(__always)
    func name(ifNamed bytes: UnsafeRawBufferPointer) -> String? {
        guard bytes.count == count, count > 0, memcmp(storage, bytes.baseAddress!, count) == 0 else { return nil }
        return name
    }

    func remember(_ bytes: UnsafeRawBufferPointer, _ name: String) {
        if bytes.count > capacity {
            storage.deallocate()
            storage = .allocate(byteCount: bytes.count, alignment: 1)
            capacity = bytes.count
        }
        storage.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        count = bytes.count
        self.name = name
        rawCount = -1
    }
}
