import Foundation
@testable import DMATrace

/// The sections of an uncompressed trace.dat v6, read by the layout of trace-cmd.dat.v6(5)
/// alone: a second reading of the format, independent of the writer, to take files apart
/// and to check what the writer wrote.
struct TraceDatV6Sections {
    var metadata: TraceDatMetadata
    var options: [(id: UInt16, payload: [UInt8])] = []
    var cpuData: [(offset: UInt64, size: UInt64)] = []
    var pages: [[[UInt8]]] = []

    struct Problem: Error, CustomStringConvertible { var description: String }

    init(path: String) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var at = 0
        func take(_ n: Int) throws -> [UInt8] {
            guard n >= 0, at + n <= bytes.count else { throw Problem(description: "\(path): truncated at \(at)") }
            defer { at += n }
            return Array(bytes[at..<(at + n)])
        }
        func int<T: FixedWidthInteger>(_: T.Type) throws -> T {
            let b = try take(MemoryLayout<T>.size)
            return b.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(as: T.self)) }
        }
        func cString() throws -> String {
            guard let end = bytes[at...].firstIndex(of: 0) else { throw Problem(description: "unterminated string") }
            defer { at = end + 1 }
            return String(decoding: bytes[at..<end], as: UTF8.self)
        }
        guard try take(10) == [0x17, 0x08, 0x44] + Array("tracing".utf8), try cString() == "6" else {
            throw Problem(description: "\(path): not a trace.dat v6")
        }
        guard try take(1) == [0] else { throw Problem(description: "big endian") }
        let longSize = Int(try take(1)[0])
        let pageSize = Int(try int(UInt32.self))
        guard try cString() == "header_page" else { throw Problem(description: "no header_page") }
        let headerPage = try take(Int(try int(UInt64.self)))
        guard try cString() == "header_event" else { throw Problem(description: "no header_event") }
        let headerEvent = try take(Int(try int(UInt64.self)))
        var ftrace: [[UInt8]] = []
        for _ in 0..<(try int(UInt32.self)) { ftrace.append(try take(Int(try int(UInt64.self)))) }
        var systems: [(name: String, formats: [[UInt8]])] = []
        for _ in 0..<(try int(UInt32.self)) {
            let name = try cString()
            var formats: [[UInt8]] = []
            for _ in 0..<(try int(UInt32.self)) { formats.append(try take(Int(try int(UInt64.self)))) }
            systems.append((name, formats))
        }
        metadata = TraceDatMetadata(pageSize: pageSize, headerPage: headerPage, headerEvent: headerEvent,
                                    ftraceFormats: ftrace, systems: systems)
        metadata.longSize = longSize
        metadata.kallsyms = try take(Int(try int(UInt32.self)))
        metadata.printkFormats = try take(Int(try int(UInt32.self)))
        metadata.cmdlines = try take(Int(try int(UInt64.self)))
        let cpus = Int(try int(UInt32.self))
        var label = try cString()
        if label == "options  " {
            while true {
                let id = try int(UInt16.self)
                if id == 0 { break }
                options.append((id, try take(Int(try int(UInt32.self)))))
            }
            label = try cString()
        }
        guard label == "flyrecord" else { throw Problem(description: "\(path): '\(label)' instead of flyrecord") }
        for _ in 0..<cpus { cpuData.append((try int(UInt64.self), try int(UInt64.self))) }
        for (cpu, d) in cpuData.enumerated() {
            guard d.size == 0 || (d.offset + d.size <= UInt64(bytes.count) && d.offset % UInt64(pageSize) == 0) else {
                throw Problem(description: "\(path): CPU \(cpu)'s data \(d) lies outside the file or off a page boundary")
            }
            var list: [[UInt8]] = []
            var p = Int(d.offset)
            while p < Int(d.offset + d.size) {
                list.append(Array(bytes[p..<min(p + pageSize, Int(d.offset + d.size))]))
                p += pageSize
            }
            pages.append(list)
        }
        for o in options {
            let text = String(decoding: o.payload.prefix { $0 != 0 }, as: UTF8.self)
            switch o.id {
            case 4: metadata.traceClock = text
            case 5: metadata.uname = text
            default: continue
            }
        }
    }
}
