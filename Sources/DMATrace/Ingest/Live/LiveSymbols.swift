import CTraceCmd
import Foundation

/// Names the frames of live kernel stacks with the running kernel's kallsyms.
///
/// The kallsyms read when tracing starts lacks every driver loaded after that (the usual
/// case: a test suite loads its driver), and an address of such a module can even fall
/// behind another module's last symbol and be named wrongly. So frames are named only when
/// the merge hands their event on, with a table read again whenever the module list changed
/// since it was read (a module's event is in the buffer only while the module is loaded, so
/// the list read after the drain has it, unless it was unloaded meanwhile), and at the end
/// with the kallsyms the capture reads when it is over, the one `record` stores in its file.
/// The names are libtraceevent's, from the same `tep_parse_kallsyms` the trace.dat path uses.
final class LiveSymbols {
    private var tep: OpaquePointer?
    /// Per address, what the current table names it (stacks repeat).
    private var names: [UInt64: (text: String, span: UInt64)] = [:]
    /// Name, size and address of every module when the table was read; nil when not known.
    private var modules: [Substring]?
    /// How many times a table was read (the first included).
    private(set) var loads = 0

    init(kallsyms: [UInt8], modules: String?) {
        load(kallsyms: kallsyms, modules: modules)
    }

    deinit { if let tep { tep_free(tep) } }

    var isEmpty: Bool { tep == nil }

    /// Replaces the table with `kallsyms` (the text of /proc/kallsyms), read when the module
    /// list was `modules` (the text of /proc/modules).
    func load(kallsyms: [UInt8], modules: String?) {
        if let tep { tep_free(tep) }
        tep = nil
        names.removeAll(keepingCapacity: true)
        self.modules = Self.signature(modules)
        loads += 1
        guard !kallsyms.isEmpty, let fresh = tep_alloc() else { return }
        var text = kallsyms
        text.append(0)
        _ = text.withUnsafeBufferPointer { tep_parse_kallsyms(fresh, UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self)) }
        tep = fresh
    }

    /// Whether the table was read with the modules of `modules` loaded where they are now.
    /// Use counts change all the time and say nothing about symbols: only names, sizes and
    /// addresses are compared.
    func isCurrent(modules text: String?) -> Bool {
        guard let now = Self.signature(text) else { return true }
        return now == modules
    }

    /// "nvme 57344 0 - Live 0xffffffffc0a1b000" -> "nvme 57344 0xffffffffc0a1b000"
    static func signature(_ text: String?) -> [Substring]? {
        guard let text else { return nil }
        return text.split(separator: "\n").map { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2 else { return line }
            return fields.count >= 6 ? "\(fields[0]) \(fields[1]) \(fields[5])" : "\(fields[0]) \(fields[1])"
        }
    }

    /// The stack with each raw frame ("0xffffffffc0971617", as the record decoder gives an
    /// address it has no symbol for) named as the trace.dat path names it: "func+0xoff".
    func symbolize(_ stack: KernelStack) -> KernelStack {
        guard tep != nil else { return stack }
        var out = stack
        var spans = stack.symbolSpans ?? [UInt64](repeating: 0, count: stack.frames.count)
        for (i, frame) in stack.frames.enumerated() where frame.hasPrefix("0x") {
            guard let addr = UInt64(frame.dropFirst(2), radix: 16) else { continue }
            let s = name(addr)
            out.frames[i] = s.text
            if i < spans.count { spans[i] = s.span }
        }
        out.symbolSpans = spans
        return out
    }

    private func name(_ addr: UInt64) -> (text: String, span: UInt64) {
        if let s = names[addr] { return s }
        var name: UnsafePointer<CChar>?
        var start: UInt64 = 0
        var span: UInt = 0
        let s: (text: String, span: UInt64)
        if let tep, tep_find_function_info(tep, addr, &name, &start, &span) != 0, let name {
            s = (String(cString: name) + "+0x" + String(addr &- start, radix: 16), UInt64(span))
        } else {
            s = ("0x" + String(addr, radix: 16), 0)
        }
        names[addr] = s
        return s
    }
}
