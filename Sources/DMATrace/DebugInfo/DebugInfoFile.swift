import CDebugInfoShim
import Foundation

/// A debug-info file that cannot be used, with the file and the problem.
public struct DebugInfoError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var problem: String
    public var description: String { "\(path): \(problem)" }
}

/// One function or inlined instance at an address, innermost first.
struct SourceFrame: Sendable, Equatable {
    var function: String?
    var file: String?
    var line: Int
    var column: Int
    /// The function hands a `dma_addr_t` back to its caller: a mapping helper.
    var returnsDMAAddress: Bool
    var inlined: Bool
}

/// One vmlinux, .ko or .ko.debug with DWARF, read through libdw (Sources/CDebugInfoShim).
/// Addresses are in the file's own layout; nothing outside this type sees a libdw handle.
final class DebugInfoFile {
    struct Function {
        var address: UInt64
        var size: UInt64
    }

    let path: String
    let isModule: Bool
    /// `.modinfo` name (a module's name with underscores, as the kernel spells it).
    let moduleName: String?
    /// The kernel release the file was built for: vermagic's first word, or vmlinux's banner.
    let release: String?
    let buildID: String?
    private let handle: OpaquePointer

    init(path: String) throws {
        var err = [CChar](repeating: 0, count: 512)
        guard let h = dmatrace_dbg_open(path, &err, err.count) else {
            let why = Self.string(err)
            throw DebugInfoError(path: path, problem: "not a usable ELF file (\(why.isEmpty ? "libdw could not read it" : why))")
        }
        handle = h
        self.path = path
        isModule = dmatrace_dbg_is_module(h) == 1
        guard dmatrace_dbg_has_dwarf(h) == 1 else {
            dmatrace_dbg_close(h)
            throw DebugInfoError(path: path, problem: "has no readable DWARF debug information (stripped or damaged: give the unstripped .ko, its .ko.debug or the -dbg package's copy)")
        }
        func modinfo(_ key: String) -> String? {
            var buf = [CChar](repeating: 0, count: 512)
            return dmatrace_dbg_modinfo(h, key, &buf, buf.count) >= 0 ? Self.string(buf) : nil
        }
        if isModule {
            moduleName = modinfo("name")
            release = modinfo("vermagic")?.split(separator: " ").first.map(String.init)
        } else {
            moduleName = nil
            var buf = [CChar](repeating: 0, count: 512)
            // "Linux version 6.12.117+deb13-amd64 (...) ..." when .rodata has contents.
            if dmatrace_dbg_symbol_string(h, "linux_banner", &buf, buf.count) > 0 {
                let words = Self.string(buf).split(separator: " ")
                release = words.count > 2 && words[0] == "Linux" && words[1] == "version" ? String(words[2]) : nil
            } else {
                release = nil
            }
        }
        var id = [UInt8](repeating: 0, count: 64)
        let n = dmatrace_dbg_build_id(h, &id, id.count)
        buildID = n > 0 ? id.prefix(min(Int(n), id.count)).map { String(format: "%02x", $0) }.joined() : nil
    }

    deinit { dmatrace_dbg_close(handle) }

    /// A NUL-terminated buffer the shim filled.
    private static func string(_ buf: [CChar]) -> String {
        String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Function symbols by name. A name defined twice (static functions of different
    /// files) maps to nil: "symbol+offset" cannot say which one ran.
    private(set) lazy var functions: [String: Function?] = {
        var table: [String: Function?] = [:]
        let count = dmatrace_dbg_function_count(handle)
        for i in 0..<max(count, 0) {
            var name: UnsafePointer<CChar>?
            var addr: UInt64 = 0, size: UInt64 = 0
            guard dmatrace_dbg_function(handle, Int32(i), &name, &addr, &size) == 1, let name else { continue }
            let key = String(cString: name)
            let f = Function(address: addr, size: size)
            if let existing = table[key] {
                if existing?.address != addr { table[key] = .some(nil) }
            } else {
                table[key] = f
            }
        }
        return table
    }()

    /// A section's address in this file's layout and its size.
    func section(_ name: String) -> (address: UInt64, size: UInt64)? {
        var addr: UInt64 = 0, size: UInt64 = 0
        return dmatrace_dbg_section(handle, name, &addr, &size) == 0 ? (addr, size) : nil
    }

    /// Where the kernel puts a module's code: every allocated, executable, non-init section
    /// in header order, each aligned, one after the other (kernel/module/main.c,
    /// layout_sections and module_get_offset_and_type). Offsets are relative to .text's, so
    /// `.text`'s load address places every other text section too.
    private(set) lazy var moduleTextLayout: [(fileAddress: UInt64, size: UInt64, offsetFromText: Int64)] = {
        var placed: [(UInt64, UInt64, UInt64)] = []
        var textOffset: UInt64?
        var end: UInt64 = 0
        let count = dmatrace_dbg_section_count(handle)
        let alloc: UInt64 = 0x2, exec: UInt64 = 0x4
        for i in 0..<max(count, 0) {
            var name: UnsafePointer<CChar>?
            var addr: UInt64 = 0, size: UInt64 = 0, align: UInt64 = 0, flags: UInt64 = 0
            guard dmatrace_dbg_section_at(handle, Int32(i), &name, &addr, &size, &align, &flags) == 1, let name else { continue }
            let n = String(cString: name)
            guard flags & (alloc | exec) == alloc | exec, !n.hasPrefix(".init") else { continue }
            let a = max(align, 1)
            let offset = (end + a - 1) / a * a
            end = offset + size
            if n == ".text" { textOffset = offset }
            placed.append((addr, size, offset))
        }
        guard let t = textOffset else { return [] }
        return placed.map { ($0.0, $0.1, Int64(bitPattern: $0.2 &- t)) }
    }()

    /// The functions at `address`, innermost inlined instance first, the containing
    /// function last. Empty when the file has no DWARF for it.
    func resolve(_ address: UInt64) -> [SourceFrame] {
        var out = [dmatrace_dbg_frame](repeating: dmatrace_dbg_frame(), count: 32)
        let n = Int(dmatrace_dbg_resolve(handle, address, &out, Int32(out.count)))
        return out.prefix(max(0, n)).map { f in
            SourceFrame(function: f.function.map { String(cString: $0) }, file: f.file.map { String(cString: $0) },
                        line: Int(f.line), column: Int(f.column), returnsDMAAddress: f.returns_dma_addr != 0,
                        inlined: f.inlined != 0)
        }
    }
}
