import Foundation
import Testing
@testable import DMATrace

/// Stacks resolved to source lines with DWARF (libdw), and the SARIF that puts findings on
/// the code. The proof is the fault-injection module: each scenario's offending call in
/// dmafi.c carries a `/* FI-LINE: scenario [rule] */` comment, and every finding of a
/// scenario must resolve to such a line of that scenario.
@Suite struct DebugInfoTests {
    static let fiSource = Fixtures.samples.appendingPathComponent("lab/faultinject/dmafi.c")
    static let fiModules = Fixtures.samples.appendingPathComponent("faultinject/modules")
    static let edu = "0000:00:06.0"
    static let stackVariants = ["x86-6.12-plain-stacks", "x86-7.3-plain-stacks"]

    struct Marker: Hashable { var line: Int; var rule: String? }

    /// scenario -> its FI-LINE lines.
    static func fiLines() throws -> [String: [Marker]] {
        let text = try String(contentsOf: fiSource, encoding: .utf8)
        var out: [String: [Marker]] = [:]
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard let r = line.range(of: "/* FI-LINE: ") else { continue }
            let body = line[r.upperBound...].prefix { $0 != "*" }.split(separator: " ").map(String.init)
            // "scenario [scenario...] [rule]": a rule id is one the registry knows.
            let rule = body.count > 1 ? body.last.flatMap { RuleRegistry.description(of: $0) != nil ? $0 : nil } : nil
            for name in body where name != rule { out[name, default: []].append(Marker(line: i + 1, rule: rule)) }
        }
        return out
    }

    /// The trace_marker lines of a recording: the module's load address the guest wrote
    /// before the scenarios ("LAB: module dmafi .text 0x…") and the scenario windows
    /// ("FI: begin/end NAME").
    static func markers(_ path: String) throws -> (base: UInt64, windows: [(name: String, from: UInt64, to: UInt64)]) {
        var base: UInt64?
        var open: [String: UInt64] = [:]
        var windows: [(String, UInt64, UInt64)] = []
        for e in try Fixtures.events(path: path) {
            guard case .marker(let text) = e.kind else { continue }
            if text.hasPrefix("LAB: module dmafi .text "), let word = text.split(separator: " ").last {
                base = DebugInfoOptions.parseModuleBase("dmafi=" + word)?.1
            }
            if text.hasPrefix("FI: begin ") { open[String(text.dropFirst(10))] = e.timestamp }
            if text.hasPrefix("FI: end "), let from = open[String(text.dropFirst(8))] { windows.append((String(text.dropFirst(8)), from, e.timestamp)) }
        }
        return (try #require(base, "\(path): no 'LAB: module dmafi .text' marker"), windows)
    }

    static func dmafiBase(_ path: String) throws -> UInt64 { try markers(path).base }

    @Test func markersCoverTheScenariosWithFindings() throws {
        let lines = try Self.fiLines()
        let source = try String(contentsOf: Self.fiSource, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        for (name, markers) in lines {
            for m in markers {
                // The marker sits on the offending call itself.
                let code = source[m.line - 1]
                #expect(code.contains("dma_") || code.contains("map_checked("), "\(name): line \(m.line) is not a DMA-API call: \(code)")
            }
        }
        #expect(lines.keys.count >= 20, "\(lines.keys.sorted())")
    }

    @Test(arguments: stackVariants)
    func everyFindingResolvesToItsScenariosLine(_ variant: String) throws {
        let path = Fixtures.samples.appendingPathComponent("faultinject/\(variant).dat").path
        let lines = try Self.fiLines()
        let (base, windows) = try Self.markers(path)
        var options = AnalysisOptions()
        options.debugInfo = DebugInfoOptions(paths: [Self.fiModules.path], moduleBases: ["dmafi": base])
        let result = try Analyzer.analyze(path: path, options: options)
        #expect(result.debugInfoWarnings.isEmpty, "\(result.debugInfoWarnings)")
        var checked = Set<String>()
        for f in result.findings where f.device == Self.edu {
            guard let w = windows.first(where: { f.timestamp >= $0.from && f.timestamp <= $0.to }) else { continue }
            let markers = try #require(lines[w.name], "\(variant): scenario \(w.name) has a finding (\(f.rule)) but no FI-LINE marker")
            let l = try #require(f.location, "\(variant) \(w.name) \(f.rule): no source location; stack \(f.stack?.frames ?? [])")
            #expect((l.file as NSString).lastPathComponent == "dmafi.c")
            #expect(l.module == "dmafi")
            let allowed = markers.filter { $0.rule == nil || $0.rule == f.rule }.map(\.line)
            #expect(allowed.contains(l.line), "\(variant) \(w.name) \(f.rule): resolved to line \(l.line) in \(l.function ?? "?"), the FI-LINE markers say \(allowed)")
            #expect(f.callSite == l.function)
            checked.insert(w.name)
        }
        // Every bug scenario whose finding a plain x86 trace can show (scenarios.json).
        for name in ["double-map-dirs", "double-map-same", "streaming-over-coherent", "no-kernel-mapping", "unmap-wrong-size",
                     "unmap-wrong-dir", "unmap-wrong-function", "unmap-sg-count", "double-unmap", "free-wrong-size",
                     "free-wrong-addr", "skip-cpu-sync", "unchecked-map-failure", "leak"] {
            #expect(checked.contains(name), "\(variant): no finding of \(name) was checked")
        }
    }

    @Test func sarifPutsEachResultOnItsSourceLine() throws {
        let trace = Fixtures.samples.appendingPathComponent("faultinject/x86-6.12-plain-stacks.dat").path
        let base = try Self.dmafiBase(trace)
        let dir = try Fixtures.scratch()
        let out = dir.appendingPathComponent("fi.sarif")
        let root = Self.fiSource.deletingLastPathComponent().path
        let r = try Fixtures.run(["audit", "--quiet", "--jobs", "1", "--format", "sarif", "--output", out.path,
                                  "--debuginfo", Self.fiModules.path, "--module-base", "dmafi=0x" + String(base, radix: 16),
                                  "--source-root", root, trace])
        #expect(r.status == 1, "\(r.stderr)")
        let python = try #require(Fixtures.which("python3"))
        let check = try Fixtures.run([Fixtures.root.appendingPathComponent("Scripts/validate-sarif.py").path, out.path], executable: python)
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")

        let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out)) as? [String: Any])
        let run = try #require((doc["runs"] as? [[String: Any]])?.first)
        let bases = try #require(run["originalUriBaseIds"] as? [String: [String: Any]])
        #expect((bases["SRCROOT"]?["uri"] as? String)?.hasPrefix("file://") == true)
        for a in try #require(run["artifacts"] as? [[String: Any]]) {
            let uri = try #require((a["location"] as? [String: Any])?["uri"] as? String)
            #expect(!uri.hasPrefix("/") && !uri.hasPrefix("file:"), "absolute artifact uri \(uri)")
        }
        let results = try #require(run["results"] as? [[String: Any]])
        let sourceLines = try String(contentsOf: Self.fiSource, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        var onCode = 0
        for result in results {
            let loc = try #require((result["locations"] as? [[String: Any]])?.first?["physicalLocation"] as? [String: Any])
            let artifact = try #require(loc["artifactLocation"] as? [String: Any])
            let uri = try #require(artifact["uri"] as? String)
            guard artifact["uriBaseId"] as? String == "SRCROOT" else {
                // Findings without a resolved stack (other devices) stay on the trace, relative.
                #expect(!uri.hasPrefix("/"), "\(uri)")
                continue
            }
            // Read the line back from the source file the uri names.
            let line = try #require((loc["region"] as? [String: Any])?["startLine"] as? Int)
            let file = try String(contentsOfFile: root + "/" + uri, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            #expect(file[line - 1].contains("/* FI-LINE: "), "\(result["ruleId"] ?? "?") at \(uri):\(line): \(file[line - 1])")
            #expect(file == sourceLines)
            let related = try #require((result["relatedLocations"] as? [[String: Any]])?.first?["physicalLocation"] as? [String: Any])
            let traceURI = try #require((related["artifactLocation"] as? [String: Any])?["uri"] as? String)
            #expect(!traceURI.hasPrefix("/") && traceURI.hasSuffix("x86-6.12-plain-stacks.dat"), "\(traceURI)")
            onCode += 1
        }
        #expect(onCode >= 14, "only \(onCode) results on the code")
    }

    @Test func withoutSourceLocationsTheSARIFNamesTheTraceRelatively() throws {
        let trace = "SampleTraces/k6.12-swiotlb.dat"
        let dir = try Fixtures.scratch()
        let out = dir.appendingPathComponent("plain.sarif")
        let p = Process()
        p.currentDirectoryURL = Fixtures.root
        p.executableURL = Fixtures.binary
        p.arguments = ["audit", "--quiet", "--fail-on", "none", "--format", "sarif", "--output", out.path, Fixtures.root.path + "/" + trace]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let text = try String(contentsOf: out, encoding: .utf8)
        #expect(text.contains("\"uri\" : \"\(trace)\"") || text.contains("\"uri\": \"\(trace)\""), "trace uri not relative to the working directory")
        #expect(!text.contains("originalUriBaseIds"))
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out)) as? [String: Any])
        let run = try #require((doc["runs"] as? [[String: Any]])?.first)
        var uris = (run["artifacts"] as? [[String: Any]] ?? []).compactMap { ($0["location"] as? [String: Any])?["uri"] as? String }
        for result in run["results"] as? [[String: Any]] ?? [] {
            for l in result["locations"] as? [[String: Any]] ?? [] {
                if let u = ((l["physicalLocation"] as? [String: Any])?["artifactLocation"] as? [String: Any])?["uri"] as? String { uris.append(u) }
            }
        }
        #expect(!uris.isEmpty && uris.allSatisfy { $0 == trace }, "\(Set(uris))")
        let python = try #require(Fixtures.which("python3"))
        let check = try Fixtures.run([Fixtures.root.appendingPathComponent("Scripts/validate-sarif.py").path, out.path], executable: python)
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
    }

    @Test func relativeURIsForTraces() {
        #expect(SARIFReporter.relativeToWorkingDirectory("/a/b/t.dat", cwd: "/a") == "b/t.dat")
        #expect(SARIFReporter.relativeToWorkingDirectory("/a/b/t.dat", cwd: "/a/c") == "../b/t.dat")
        #expect(SARIFReporter.relativeToWorkingDirectory("./x/t.dat", cwd: "/a") == "x/t.dat")
    }

    /// A real driver through Debian's linux-image-6.12.117+deb13-amd64-dbg: e1000e's
    /// receive buffers, mapped while the interface comes up.
    @Test func e1000eResolvesThroughDebiansDebugPackage() throws {
        let debug = Fixtures.samples.appendingPathComponent("debuginfo/6.12.117+deb13-amd64/e1000e.ko.debug").path
        var options = AnalysisOptions()
        options.debugInfo = DebugInfoOptions(paths: [debug])
        let result = try Analyzer.analyze(path: Fixtures.sample("k6.12-stacks.dat"), options: options)
        #expect(result.debugInfoWarnings.isEmpty, "\(result.debugInfoWarnings)")
        let nic = result.findings.filter { $0.device == "0000:00:05.0" }
        let rx = try #require(nic.first { $0.rule == "mapping-leak" })
        let l = try #require(rx.location)
        #expect(l.file == "drivers/net/ethernet/intel/e1000e/netdev.c")
        #expect(l.function == "e1000_alloc_rx_buffers")
        #expect(l.module == "e1000e")
        let ring = try #require(nic.first { $0.rule == "coherent-leak" }?.location)
        #expect(ring.function == "e1000_alloc_ring_dma" && ring.inlinedFrom.first?.function == "e1000e_setup_tx_resources")

        // elfutils' own addr2line, asked about the same frame, names the same line.
        let frame = try #require(rx.stack?.frames.first { $0.hasPrefix("e1000_alloc_rx_buffers+") })
        guard case .symbol(let sym, let off, _) = StackFrameText(frame) else { Issue.record("\(frame)"); return }
        let addr2line = try #require(Fixtures.which("eu-addr2line"), "eu-addr2line (elfutils, Scripts/setup.sh)")
        let a = try Fixtures.run(["-e", debug, "-i", "-f", "\(sym)+0x\(String(off - 1, radix: 16))"], executable: addr2line)
        let lines = a.stdout.split(separator: "\n").map(String.init)
        let i = try #require(lines.firstIndex(of: "e1000_alloc_rx_buffers"), "\(a.stdout)")
        // It prefixes the build's compilation folder (debian/build/...); the line is the same.
        #expect(lines[i + 1].contains("/drivers/net/ethernet/intel/e1000e/netdev.c:\(l.line):"), "eu-addr2line: \(a.stdout)")
    }

    @Test func aModuleBuiltForAnotherKernelIsRefusedWithOneWarning() throws {
        let trace = Fixtures.samples.appendingPathComponent("faultinject/x86-6.12-plain-stacks.dat").path
        let other = Self.fiModules.appendingPathComponent("7.3.4+deb13-amd64/dmafi.ko").path
        var options = AnalysisOptions()
        options.debugInfo = DebugInfoOptions(paths: [other], moduleBases: ["dmafi": try Self.dmafiBase(trace)])
        let result = try Analyzer.analyze(path: trace, options: options)
        #expect(result.debugInfoWarnings.count == 1, "\(result.debugInfoWarnings)")
        #expect(result.debugInfoWarnings.first?.contains("built for kernel 7.3.4+deb13-amd64, the trace is from 6.12.117+deb13-amd64") == true)
        #expect(result.findings.allSatisfy { $0.location == nil })
        #expect(result.findings.contains { $0.stack?.frames.contains { $0.hasPrefix("0xffffffff") } == true })
    }

    @Test func symbolSizesThatDisagreeRefuseTheModule() throws {
        let debug = Fixtures.samples.appendingPathComponent("debuginfo/6.12.117+deb13-amd64/e1000e.ko.debug").path
        let resolver = try StackResolver(options: DebugInfoOptions(paths: [debug]), kernelRelease: "6.12.117+deb13-amd64")
        // A real stack of the recording, and the same with an offset beyond the function's end.
        let recorded = try Fixtures.events(path: Fixtures.sample("k6.12-stacks.dat"))
        let good = try #require(recorded.lazy.compactMap(\.stack).first { $0.frames.contains { $0.hasPrefix("e1000_alloc_rx_buffers+") } })
        var bad = good
        bad.frames = good.frames.map { $0.hasPrefix("e1000_alloc_rx_buffers+") ? "e1000_alloc_rx_buffers+0x7fff0" : $0 }
        #expect(resolver.locate(good)?.function == "e1000_alloc_rx_buffers")
        #expect(resolver.locate(bad) == nil)
        #expect(resolver.warnings.count == 1 && resolver.warnings[0].contains("not the build that ran"), "\(resolver.warnings)")
        // Refused for the rest of the trace, with no second warning.
        #expect(resolver.locate(good) == nil)
        #expect(resolver.warnings.count == 1)

        // The kallsyms of the trace says how long the running function is: a file whose
        // function is longer (or much shorter) is another build, even with the offset inside.
        let i = try #require(good.frames.firstIndex { $0.hasPrefix("e1000_alloc_rx_buffers+") })
        let span = try #require(good.symbolSpans?[i])
        #expect(span > 0)
        let fresh = try StackResolver(options: DebugInfoOptions(paths: [debug]), kernelRelease: "6.12.117+deb13-amd64")
        #expect(fresh.locate(good)?.function == "e1000_alloc_rx_buffers")
        var shorter = good
        shorter.symbolSpans?[i] = 300
        let other = try StackResolver(options: DebugInfoOptions(paths: [debug]), kernelRelease: "6.12.117+deb13-amd64")
        #expect(other.locate(shorter) == nil)
        #expect(other.warnings.first?.contains("the trace's kallsyms gives it 300 bytes") == true, "\(other.warnings)")
        #expect(StackResolver.spanAgrees(592, size: 581) && StackResolver.spanAgrees(0, size: 581))
        #expect(!StackResolver.spanAgrees(580, size: 581) && !StackResolver.spanAgrees(1000, size: 581))
        #expect(StackResolver.spanAgrees(1 << 20, size: 581))
    }

    /// A trace.dat frame does not say its module: when two modules define the symbol, no
    /// location rather than a guess.
    @Test func aSymbolTwoModulesDefineIsNotGuessed() throws {
        let original = try Data(contentsOf: Self.fiModules.appendingPathComponent("6.12.117+deb13-amd64/dmafi.ko"))
        let marker = Data("name=dmafi\0".utf8)
        let at = try #require(original.range(of: marker))
        var twin = original
        twin.replaceSubrange(at, with: Data("name=dmafx\0".utf8))
        let dir = try Fixtures.scratch()
        let twinPath = dir.appendingPathComponent("dmafx.ko").path
        try twin.write(to: URL(fileURLWithPath: twinPath))
        let stack = KernelStack(frames: ["dma_unmap_page_attrs+0x167", "sc_double_unmap+0x5e", "run_write+0x95"])
        let one = try StackResolver(options: DebugInfoOptions(paths: [Self.fiModules.appendingPathComponent("6.12.117+deb13-amd64/dmafi.ko").path]),
                                    kernelRelease: "6.12.117+deb13-amd64")
        #expect(one.locate(stack)?.function == "sc_double_unmap")
        let two = try StackResolver(options: DebugInfoOptions(paths: [Self.fiModules.appendingPathComponent("6.12.117+deb13-amd64/dmafi.ko").path, twinPath]),
                                    kernelRelease: "6.12.117+deb13-amd64")
        #expect(two.locate(stack) == nil)
        #expect(two.warnings.contains { $0.contains("sc_double_unmap is defined in dmafi and dmafx") }, "\(two.warnings)")
    }

    /// The trace's kallsyms names each module symbol's module: a folder holding another
    /// module that defines the same functions changes nothing.
    @Test func kallsymsTellsWhichModuleAFrameIsIn() throws {
        let debug = Fixtures.samples.appendingPathComponent("debuginfo/6.12.117+deb13-amd64/e1000e.ko.debug")
        let dir = try Fixtures.scratch()
        try FileManager.default.copyItem(at: debug, to: dir.appendingPathComponent("e1000e.ko.debug"))
        var twin = try Data(contentsOf: debug)
        let at = try #require(twin.range(of: Data("name=e1000e\0".utf8)))
        twin.replaceSubrange(at, with: Data("name=e1000f\0".utf8))
        try twin.write(to: dir.appendingPathComponent("e1000f.ko"))
        let source = try TraceOpener.open(path: Fixtures.sample("k6.12-stacks.dat"))
        var options = AnalysisOptions()
        options.debugInfo = DebugInfoOptions(paths: [dir.path])
        let result = try Analyzer.analyze(source: source, options: options)
        #expect(result.debugInfoWarnings.isEmpty, "\(result.debugInfoWarnings)")
        let modules = try #require(source.kallsymsModules())
        #expect(modules["e1000_alloc_rx_buffers"] == ["e1000e"])
        #expect(result.findings.contains { $0.location?.function == "e1000_alloc_rx_buffers" && $0.location?.module == "e1000e" })
    }

    /// Debian installs modules as .ko.xz: libdwfl decompresses them.
    @Test func compressedModulesInAFolder() throws {
        let xz = try #require(Fixtures.which("xz"), "xz (xz-utils, Scripts/setup.sh)")
        let dir = try Fixtures.scratch()
        let ko = Self.fiModules.appendingPathComponent("6.12.117+deb13-amd64/dmafi.ko")
        let packed = dir.appendingPathComponent("dmafi.ko.xz")
        try FileManager.default.copyItem(at: ko, to: dir.appendingPathComponent("dmafi.ko"))
        #expect(try Fixtures.run(["-f", dir.appendingPathComponent("dmafi.ko").path], executable: xz).status == 0)
        #expect(FileManager.default.fileExists(atPath: packed.path))
        let resolver = try StackResolver(options: DebugInfoOptions(paths: [dir.path], moduleBases: ["dmafi": 0xffff_ffff_c066_b000]),
                                         kernelRelease: "6.12.117+deb13-amd64")
        // The old recording's double-map-dirs stack (dmafi loaded at 0xffffffffc066b000).
        let stack = KernelStack(frames: ["trace_event_raw_event_dma_map+0xe2", "dma_map_page_attrs+0x1f4", "0xffffffffc066bc7f",
                                         "0xffffffffc066bfa5", "0xffffffffc066d335", "full_proxy_write+0x51"])
        let l = try #require(resolver.locate(stack))
        let marked = try Self.fiLines()["double-map-dirs"]?.first?.line
        #expect(l.function == "sc_double_map_dirs" && l.line == marked)
        #expect(resolver.warnings.isEmpty, "\(resolver.warnings)")
    }

    @Test func frameForms() {
        #expect(StackFrameText("e1000_xmit_frame+0x1f/0x2a0 [e1000e]") == .symbol("e1000_xmit_frame", 0x1f, module: "e1000e"))
        #expect(StackFrameText("dma_map_page_attrs+0x1f4") == .symbol("dma_map_page_attrs", 0x1f4, module: nil))
        #expect(StackFrameText("0xffffffffc066bc7f") == .address(0xffff_ffff_c066_bc7f))
        #expect(StackFrameText("vfs_write") == .name("vfs_write"))
        #expect(StackFrameText.span("e1000_xmit_frame+0x1f/0x2a0 [e1000e]") == 0x2a0)
        #expect(StackFrameText.span("e1000_xmit_frame+0x1f") == 0)
        #expect(DebugInfoOptions.parseModuleBase("dmafi=0xffffffffc0683000")?.1 == 0xffff_ffff_c068_3000)
        #expect(DebugInfoOptions.parseModuleBase("my-mod=ffff") ?? ("", 0) == ("my_mod", 0xffff))
        #expect(DebugInfoOptions.parseModuleBase("dmafi=zz") == nil)
        #expect(DebugInfoOptions.parseModuleBase("=0x10") == nil)
    }

    /// Truncated, flipped and foreign files: a sentence naming the file, never a crash.
    @Test func corruptELFFilesGiveAClearMessage() throws {
        let good = try Data(contentsOf: Self.fiModules.appendingPathComponent("6.12.117+deb13-amd64/dmafi.ko"))
        let dir = try Fixtures.scratch()
        var variants: [(String, Data)] = [("empty.ko", Data()), ("text.ko", Data("not an ELF file\n".utf8)),
                                          ("header-only.ko", good.prefix(64))]
        var rng = SystemRandomNumberGenerator()
        for i in 0..<12 { variants.append(("cut\(i).ko", good.prefix(Int.random(in: 16..<good.count, using: &rng)))) }
        for i in 0..<12 {
            var d = good
            for _ in 0..<8 { let at = Int.random(in: 0..<d.count, using: &rng); d[at] ^= UInt8.random(in: 1...255, using: &rng) }
            variants.append(("flip\(i).ko", d))
        }
        let stack = KernelStack(frames: ["dma_map_page_attrs+0x1f4", "0xffffffffc066bc7f", "0xffffffffc066bfa5"])
        for (name, data) in variants {
            let path = dir.appendingPathComponent(name).path
            try data.write(to: URL(fileURLWithPath: path))
            do {
                let r = try StackResolver(options: DebugInfoOptions(paths: [path], moduleBases: ["dmafi": 0xffff_ffff_c066_b000]),
                                          kernelRelease: "6.12.117+deb13-amd64")
                _ = r.locate(stack)
            } catch let e as DebugInfoError {
                #expect(e.description.hasPrefix(path + ": "), "\(e)")
            }
        }
        let cli = try Fixtures.run(["analyze", "--debuginfo", dir.appendingPathComponent("text.ko").path, Fixtures.sample("k6.12-stacks.dat")])
        #expect(cli.status == 2)
        #expect(cli.stderr.contains("text.ko: not a usable ELF file (not an ELF file)"), "\(cli.stderr)")
        let audit = try Fixtures.run(["audit", "--quiet", "--debuginfo", dir.appendingPathComponent("text.ko").path, Fixtures.sample("k6.12-stacks.dat")])
        #expect(audit.status == 2 && audit.stderr.components(separatedBy: "text.ko: not a usable ELF file").count == 2, "\(audit.stderr)")
        let missing = try Fixtures.run(["analyze", "--debuginfo", dir.appendingPathComponent("nope").path, Fixtures.sample("k6.12-stacks.dat")])
        #expect(missing.status == 2 && missing.stderr.contains("nope: no such file or folder"), "\(missing.stderr)")
    }

    @Test func theFingerprintFollowsTheFunctionNotTheLine() {
        var a = Finding(rule: "double-mapping", severity: .error, device: "d", timestamp: 1, cpu: 0, task: "t", pid: 1,
                        message: "m", history: [], stack: nil, callSite: nil, fingerprint: "")
        var moved = a
        var other = a
        a.locate(SourceLocation(file: "drivers/x.c", line: 100, function: "x_map", module: "x", inlinedFrom: []))
        moved.locate(SourceLocation(file: "drivers/x.c", line: 140, function: "x_map", module: "x", inlinedFrom: []))
        other.locate(SourceLocation(file: "drivers/x.c", line: 100, function: "x_other", module: "x", inlinedFrom: []))
        #expect(a.fingerprint == moved.fingerprint)
        #expect(a.fingerprint != other.fingerprint)
        // A baseline written before the line moved still knows the moved finding.
        let baseline = Baseline(findings: [AnalysisDocument.FindingJSON(a)])
        #expect(baseline.fingerprints.contains(moved.fingerprint))
    }

    @Test func jsonTextAndHTMLShowTheLocation() throws {
        let debug = Fixtures.samples.appendingPathComponent("debuginfo/6.12.117+deb13-amd64/e1000e.ko.debug").path
        let json = try Fixtures.run(["analyze", "--format", "json", "--fail-on", "none", "--debuginfo", debug, Fixtures.sample("k6.12-stacks.dat")])
        #expect(json.status == 0, "\(json.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let findings = try #require(doc["findings"] as? [[String: Any]])
        let located = findings.compactMap { $0["location"] as? [String: Any] }
        let ring = try #require(located.first { $0["function"] as? String == "e1000_alloc_ring_dma" })
        #expect(ring["file"] as? String == "drivers/net/ethernet/intel/e1000e/netdev.c")
        #expect(ring["module"] as? String == "e1000e")
        #expect(((ring["inlined_from"] as? [[String: Any]])?.first?["function"] as? String) == "e1000e_setup_tx_resources")
        #expect((ring["line"] as? Int ?? 0) > 0)

        let text = try Fixtures.run(["analyze", "--fail-on", "none", "--debuginfo", debug, Fixtures.sample("k6.12-stacks.dat")])
        #expect(text.stdout.contains("    at drivers/net/ethernet/intel/e1000e/netdev.c:"), "\(text.stdout)")
        #expect(text.stdout.contains(" in e1000_alloc_rx_buffers [e1000e]"))

        let dir = try Fixtures.scratch()
        let html = dir.appendingPathComponent("r.html")
        let r = try Fixtures.run(["report", "-o", html.path, "--debuginfo", debug,
                                  "--source-url", "https://git.example.org/linux/tree/{file}#n{line}", Fixtures.sample("k6.12-stacks.dat")])
        #expect(r.status == 0, "\(r.stderr)")
        let page = try String(contentsOf: html, encoding: .utf8)
        #expect(page.contains("href=\"https://git.example.org/linux/tree/drivers/net/ethernet/intel/e1000e/netdev.c#n"), "no source link")
        // Still self-contained: the only references are links to source lines.
        let python = try #require(Fixtures.which("python3"))
        let check = Fixtures.root.appendingPathComponent("Scripts/check-html.py").path
        let linked = try Fixtures.run([check, "--allow-source-links", html.path], executable: python)
        #expect(linked.status == 0, "\(linked.stdout)")
        #expect(try Fixtures.run([check, html.path], executable: python).status == 1, "the strict check sees the links")
        let bad = try Fixtures.run(["report", "-o", html.path, "--source-url", "javascript:alert(1)/{file}", Fixtures.sample("k6.12-stacks.dat")])
        #expect(bad.status == 2)
    }

    /// `.dma-trace.yml` names the debug info; the audit's workers get it, and the github
    /// format annotates the source lines.
    @Test func auditTakesDebugInfoFromTheConfiguration() throws {
        let trace = Fixtures.samples.appendingPathComponent("faultinject/x86-7.3-plain-stacks.dat").path
        let base = try Self.dmafiBase(trace)
        let dir = try Fixtures.scratch()
        let cfg = dir.appendingPathComponent(".dma-trace.yml")
        try """
        debuginfo:
          - \(Self.fiModules.path)
        module_base:
          dmafi: 0x\(String(base, radix: 16))
        source_root: \(Self.fiSource.deletingLastPathComponent().path)
        """.write(to: cfg, atomically: true, encoding: .utf8)
        let html = dir.appendingPathComponent("html")
        let r = try Fixtures.run(["audit", "--quiet", "--jobs", "1", "--config", cfg.path, "--format", "github",
                                  "--html", html.path, "--source-url", "https://git.example.org/dmafi/blob/main/{file}#L{line}", trace])
        #expect(r.status == 1, "\(r.stderr)")
        let page = try String(contentsOf: html.appendingPathComponent("001-x86-7.3-plain-stacks.dat.html"), encoding: .utf8)
        #expect(page.contains("href=\"https://git.example.org/dmafi/blob/main/dmafi.c#L269\""), "no link to the double-map-dirs line")
        let lines = try Self.fiLines()
        let annotated = r.stdout.split(separator: "\n").filter { $0.contains("file=dmafi.c,line=") }
        #expect(annotated.count >= 14, "\(r.stdout)")
        let marked = Set(lines.values.flatMap { $0.map(\.line) })
        for a in annotated {
            let n = a.split(separator: ",").first { $0.hasPrefix("line=") }.flatMap { Int($0.dropFirst(5)) }
            #expect(n.map(marked.contains) == true, "\(a)")
        }
    }

    @Test func configurationNamesDebugInfo() throws {
        let dir = try Fixtures.scratch()
        let cfg = dir.appendingPathComponent(".dma-trace.yml").path
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("dbg"), withIntermediateDirectories: true)
        let c = try AuditConfig.parse("debuginfo:\n  - dbg\nmodule_base:\n  dmafi: 0xffffffffc0683000\nsource_root: src\n", path: cfg)
        #expect(c.debugInfo.paths == [dir.appendingPathComponent("dbg").path])
        #expect(c.debugInfo.moduleBases["dmafi"] == 0xffff_ffff_c068_3000)
        #expect(c.sourceRoot == dir.appendingPathComponent("src").path)
        do {
            _ = try AuditConfig.parse("severity: {}\nmodule_base:\n  dmafi: nowhere\n", path: cfg)
            Issue.record("a bad module_base was accepted")
        } catch let e as AuditConfig.ConfigError {
            #expect(e.line == 3, "\(e)")
        }
        do {
            _ = try AuditConfig.parse("debuginfo: missing-folder\n", path: cfg)
            Issue.record("a missing debuginfo path was accepted")
        } catch let e as AuditConfig.ConfigError {
            #expect(e.line == 1 && e.problem.contains("missing-folder"), "\(e)")
        }
    }
}
