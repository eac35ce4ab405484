import Foundation

/// Where a finding's call site is in the driver's source.
public struct SourceLocation: Codable, Sendable, Hashable {
    /// A function the location's function was inlined into, innermost first.
    public struct InlinedCaller: Codable, Sendable, Hashable {
        public var function: String?
        public var file: String?
        public var line: Int
    }

    /// As the DWARF line table names it (relative to the kernel tree for in-tree code).
    public var file: String
    public var line: Int
    public var function: String?
    /// The module's name; nil for the kernel image.
    public var module: String?
    /// Empty when the function was not inlined.
    public var inlinedFrom: [InlinedCaller]

    enum CodingKeys: String, CodingKey {
        case file, line, function, module
        case inlinedFrom = "inlined_from"
    }

    /// `FILE:LINE in FUNCTION [module]`, the text report's form.
    public var text: String {
        var s = "\(file):\(line)"
        if let function { s += " in \(function)" }
        if let module { s += " [\(module)]" }
        if let outer = inlinedFrom.first {
            s += ", inlined into \(outer.function ?? "?")"
            if let f = outer.file { s += " at \(f):\(outer.line)" }
        }
        return s
    }
}

/// `--debuginfo` and `--module-base`: which files to read and where raw module addresses
/// were loaded.
public struct DebugInfoOptions: Sendable, Equatable {
    /// vmlinux, .ko, .ko.debug files or folders of them.
    public var paths: [String] = []
    /// Module name -> the runtime address of its .text (/sys/module/NAME/sections/.text).
    public var moduleBases: [String: UInt64] = [:]
    public init(paths: [String] = [], moduleBases: [String: UInt64] = [:]) {
        self.paths = paths
        self.moduleBases = moduleBases
    }
    public var isEmpty: Bool { paths.isEmpty }

    /// `NAME=ADDR` (hex with 0x, as /sys/module/NAME/sections/.text prints it).
    public static func parseModuleBase(_ s: String) -> (String, UInt64)? {
        let parts = s.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty else { return nil }
        var hex = parts[1].lowercased()
        if hex.hasPrefix("0x") { hex.removeFirst(2) }
        guard !hex.isEmpty, let v = UInt64(hex, radix: 16) else { return nil }
        return (StackResolver.normalize(parts[0]), v)
    }
}

/// Resolves kernel stack frames to source lines with the debug-info files given, and
/// picks the driver's call site. Findings only: the decoder never calls it.
///
/// A module file is used only when it fits the trace: built for the trace's kernel release
/// (vermagic), and every `symbol+offset` of the stack within that symbol's size. A file
/// that does not fit is refused for its module with one warning; those frames stay
/// `symbol+offset`.
public final class StackResolver {
    public private(set) var warnings: [String] = []
    private let release: String?
    private let moduleBases: [String: UInt64]
    /// Files named on the command line, opened at once.
    private var modules: [String: DebugInfoFile] = [:]
    private var vmlinux: DebugInfoFile?
    /// Folder contents, opened when a frame needs them.
    /// Every copy of a module found (a folder may hold several kernels' builds).
    private var folderModules: [String: [String]] = [:]
    private var folderVmlinux: [String] = []
    private var refused: Set<String> = []
    /// From the trace's kallsyms: which modules define a function name. A trace.dat's
    /// frames do not carry the module; this tells it (nil: unknown, e.g. text input).
    var kallsymsModules: [String: [String]]?
    private var warned: Set<String> = []

    public init(options: DebugInfoOptions, kernelRelease: String?) throws {
        release = kernelRelease
        moduleBases = options.moduleBases
        let fm = FileManager.default
        for path in options.paths {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
                throw DebugInfoError(path: path, problem: "no such file or folder (--debuginfo)")
            }
            if isDir.boolValue {
                try index(folder: path)
            } else {
                // A file named explicitly must be readable: its problem is the user's to fix.
                let file = try DebugInfoFile(path: path)
                adopt(file)
            }
        }
        for name in moduleBases.keys.sorted() where modules[name] == nil && folderModules[name] == nil && !refused.contains(name) {
            warn("--module-base \(name): no debug-info file for module \(name) among --debuginfo")
        }
    }

    static func normalize(_ module: String) -> String { module.replacingOccurrences(of: "-", with: "_") }

    private static func moduleName(fromFile path: String) -> String? {
        let base = (path as NSString).lastPathComponent
        for suffix in [".ko.debug", ".ko", ".ko.xz", ".ko.gz", ".ko.zst"] where base.hasSuffix(suffix) {
            return normalize(String(base.dropLast(suffix.count)))
        }
        return nil
    }

    private func warn(_ s: String) {
        if warned.insert(s).inserted { warnings.append(s) }
    }

    private func index(folder: String) throws {
        guard let walker = FileManager.default.enumerator(atPath: folder) else {
            throw DebugInfoError(path: folder, problem: "cannot list the folder (--debuginfo)")
        }
        for case let rel as String in walker {
            let path = (folder as NSString).appendingPathComponent(rel)
            let base = (rel as NSString).lastPathComponent
            if let name = Self.moduleName(fromFile: base) {
                folderModules[name, default: []].append(path)
            } else if base == "vmlinux" || base.hasPrefix("vmlinux-") {
                folderVmlinux.append(path)
            }
        }
    }

    /// Checks the release and files the module; a mismatch refuses it with one warning
    /// (unless `quiet`: another copy may still fit).
    /// Returns the name the file was filed under, nil when refused.
    @discardableResult
    private func adopt(_ file: DebugInfoFile, quiet: Bool = false) -> String? {
        let name = file.isModule ? (file.moduleName.map(Self.normalize) ?? Self.moduleName(fromFile: file.path) ?? file.path) : "vmlinux"
        if let built = file.release, let release, built != release {
            if !quiet { refuse(name, "\(file.path): built for kernel \(built), the trace is from \(release): frames of \(name) stay symbol+offset") }
            return nil
        }
        if file.isModule {
            if modules[name] == nil { modules[name] = file }
        } else if vmlinux == nil {
            vmlinux = file
        }
        return name
    }

    private func refuse(_ name: String, _ why: String) {
        if refused.insert(name).inserted { warn(why) }
        modules[name] = nil
        if name == "vmlinux" { vmlinux = nil }
    }

    private func module(named name: String) -> DebugInfoFile? {
        if refused.contains(name) { return nil }
        if let m = modules[name] { return m }
        guard let paths = folderModules.removeValue(forKey: name) else { return nil }
        var others: [String] = []
        for path in paths {
            do {
                let file = try DebugInfoFile(path: path)
                // The file's own .modinfo name counts, whatever it is called on disk.
                if let filed = adopt(file, quiet: true) { return modules[filed] }
                others.append("\(path) (\(file.release ?? "?"))")
            } catch {
                // One bad file in a folder does not stop the others from being used.
                warn("\(error): skipped")
            }
        }
        if !others.isEmpty {
            refuse(name, "no copy of \(name) among --debuginfo was built for kernel \(release ?? "?"), the trace's: \(others.joined(separator: ", ")); its frames stay symbol+offset")
        }
        return nil
    }

    private func kernelImage() -> DebugInfoFile? {
        if refused.contains("vmlinux") { return nil }
        while vmlinux == nil, !folderVmlinux.isEmpty {
            let path = folderVmlinux.removeFirst()
            do { adopt(try DebugInfoFile(path: path)) } catch { warn("\(error): skipped") }
        }
        return vmlinux
    }

    /// The files that may define `symbol`: named modules, folder modules whose name starts
    /// with the symbol's first word (kernel convention: e1000_… in e1000 and e1000e, both
    /// opened, so a name both define is reported ambiguous instead of guessed), the kernel
    /// image. A trace.dat's frames do not say their module.
    private func candidates(for symbol: String, module: String?) -> [(String, DebugInfoFile)] {
        if let module {
            let name = Self.normalize(module)
            return self.module(named: name).map { [(name, $0)] } ?? []
        }
        var out: [(String, DebugInfoFile)] = []
        let word = symbol.drop { $0 == "_" }.prefix { $0 != "_" && $0 != "." }
        if !word.isEmpty {
            for name in folderModules.keys.sorted() where name.hasPrefix(word) { _ = self.module(named: name) }
        }
        for (name, file) in modules.sorted(by: { $0.key < $1.key }) { out.append((name, file)) }
        if let k = kernelImage() { out.append(("vmlinux", k)) }
        return out
    }

    /// The call site of a stack: the first frame, inlined ones included, that is not DMA-API
    /// or tracing machinery and not a driver helper returning a dma_addr_t. nil when that
    /// frame has no debug info here.
    public func locate(_ stack: KernelStack) -> SourceLocation? {
        for (i, frame) in stack.frames.enumerated() {
            switch StackFrameText(frame) {
            case .symbol(let name, let offset, let module):
                if RuleContext.isMachinery(name) { continue }
                let span = stack.symbolSpans.flatMap { i < $0.count ? $0[i] : nil } ?? StackFrameText.span(frame)
                // The trace's kallsyms names the module when only one defines the function.
                let owner = module ?? kallsymsModules?[name].flatMap { $0.count == 1 ? $0[0] : nil }
                guard let (mod, file, address) = place(symbol: name, offset: offset, span: span, module: owner) else { return nil }
                switch pick(file.resolve(address), module: mod) {
                case .location(let l): return l
                case .skip: continue
                case .none: return nil
                }
            case .address(let addr):
                guard let (mod, file, address) = place(raw: addr) else { return nil }
                switch pick(file.resolve(address), module: mod) {
                case .location(let l): return l
                case .skip: continue
                case .none: return nil
                }
            case .name(let name):
                if RuleContext.isMachinery(name) { continue }
                return nil
            }
        }
        return nil
    }

    private enum Pick { case location(SourceLocation), skip, none }

    private func pick(_ frames: [SourceFrame], module: String) -> Pick {
        guard !frames.isEmpty else { return .none }
        for (i, f) in frames.enumerated() {
            guard let fn = f.function else { return .none }
            if RuleContext.isMachinery(fn) || f.returnsDMAAddress || f.file.map(RuleContext.isMachinery(file:)) == true { continue }
            guard let file = f.file, f.line > 0 else { return .none }
            let outer = frames[(i + 1)...].map { SourceLocation.InlinedCaller(function: $0.function, file: $0.file, line: $0.line) }
            return .location(SourceLocation(file: file, line: f.line, function: fn,
                                            module: module == "vmlinux" ? nil : module, inlinedFrom: outer))
        }
        return .skip
    }

    /// `symbol+offset` to an address in the file defining it. Frames are return addresses:
    /// one byte back is inside the call instruction, on the caller's line.
    /// Whether a function of `size` bytes in the file is the one the trace's kallsyms shows
    /// with the next symbol `span` bytes on: measured 5 to 11 bytes of padding before the next
    /// function (its 16-byte alignment and __pfx_ stub) on Debian's 6.12 e1000e. A span
    /// beyond a page says nothing (the last function of a section or module).
    static func spanAgrees(_ span: UInt64, size: UInt64) -> Bool {
        guard span > 0, size > 0 else { return true }
        if span < size { return false }
        return span - size < 128 || span - size >= 4096
    }

    private func place(symbol: String, offset: UInt64, span: UInt64 = 0, module: String?) -> (String, DebugInfoFile, UInt64)? {
        var defining: [(String, DebugInfoFile, DebugInfoFile.Function)] = []
        for (name, file) in candidates(for: symbol, module: module) {
            guard let entry = file.functions[symbol] else { continue }
            guard let fn = entry else {
                warn("\(file.path): \(symbol) is defined more than once: frames \(symbol)+… stay symbol+offset")
                continue
            }
            defining.append((name, file, fn))
        }
        // A return address may be the function's very end (a call to a noreturn function as
        // its last instruction): offset == size still fits.
        let fitting = defining.filter { $0.2.size == 0 || (offset <= $0.2.size && Self.spanAgrees(span, size: $0.2.size)) }
        if fitting.count == 1, let (name, file, fn) = fitting.first {
            return (name, file, fn.address + (offset > 0 ? offset - 1 : 0))
        }
        if fitting.isEmpty, defining.count == 1, let (name, file, fn) = defining.first {
            // The only file with this function has it shorter than the running kernel's:
            // another build of the module.
            let seen = offset > fn.size ? "the trace's stack has \(symbol)+0x\(String(offset, radix: 16))"
                : "the trace's kallsyms gives it \(span) bytes"
            refuse(name, "\(file.path): \(symbol) is \(fn.size) bytes in this file but \(seen): not the build that ran; frames of \(name) stay symbol+offset")
        } else if fitting.count > 1 {
            warn("\(symbol) is defined in \(fitting.map(\.0).joined(separator: " and ")): give only the module that ran (its frames stay symbol+offset)")
        }
        return nil
    }

    /// A raw address inside a module whose .text load address is known.
    private func place(raw addr: UInt64) -> (String, DebugInfoFile, UInt64)? {
        for (name, base) in moduleBases.sorted(by: { $0.key < $1.key }) {
            guard let file = module(named: name) else { continue }
            for section in file.moduleTextLayout {
                let start = base &+ UInt64(bitPattern: section.offsetFromText)
                guard addr > start, addr - start <= section.size else { continue }
                return (name, file, section.fileAddress + (addr - start) - 1)
            }
        }
        return nil
    }
}

/// The forms a stack frame takes: `symbol+0xoff[/0xsize] [module]` (kallsyms, kernel text
/// with sym-offset), `0xADDR` (no symbol: a module unloaded before kallsyms was saved) or a
/// bare name (kernel text without offsets: not resolvable).
enum StackFrameText: Equatable {
    case symbol(String, UInt64, module: String?)
    case address(UInt64)
    case name(String)

    /// The `/0xsize` of the kernel's own `symbol+off/size` rendering (kallsyms' span), or 0.
    static func span(_ text: String) -> UInt64 {
        guard let slash = text.lastIndex(of: "/") else { return 0 }
        let rest = text[text.index(after: slash)...].prefix { !$0.isWhitespace }
        return rest.hasPrefix("0x") ? UInt64(rest.dropFirst(2), radix: 16) ?? 0 : 0
    }

    init(_ text: String) {
        var s = Substring(text).trimmingCharacters(in: .whitespaces)[...]
        var module: String?
        if s.hasSuffix("]"), let open = s.lastIndex(of: "[") {
            module = String(s[s.index(after: open)..<s.index(before: s.endIndex)])
            s = s[..<open].trimmingCharacters(in: .whitespaces)[...]
        }
        if s.hasPrefix("0x"), let v = UInt64(s.dropFirst(2), radix: 16) {
            self = .address(v)
            return
        }
        if let plus = s.lastIndex(of: "+") {
            var off = s[s.index(after: plus)...]
            if let slash = off.firstIndex(of: "/") { off = off[..<slash] }
            if off.hasPrefix("0x"), let v = UInt64(off.dropFirst(2), radix: 16) {
                self = .symbol(String(s[..<plus]), v, module: module)
                return
            }
        }
        self = .name(String(s))
    }
}
