import Foundation
import Testing
@testable import DMATrace

/// Docs/bad-input.md's table and these rows are one table: each row is run here, and the
/// page's table must be what `markdown` renders from the rows (regenerate it with
/// `DMA_TRACE_UPDATE_DOCS=1 swift test --filter BadInputTableTests`).
@Suite struct BadInputTableTests {
    struct Observed: Sendable {
        /// As a shell reports it: 128 + the signal when a signal ended the process.
        var status: Int32
        var stderr: String
    }

    /// A scratch folder that is the current directory of every command, so messages show short names.
    struct Context: Sendable {
        let dir: URL

        func file(_ name: String, _ data: Data) throws {
            let url = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url)
        }

        func text(_ name: String, _ text: String) throws { try file(name, Data(text.utf8)) }

        func sample(_ name: String, as copy: String) throws {
            try file(copy, Data(contentsOf: URL(fileURLWithPath: Fixtures.sample(name))))
        }

        func finish(_ p: Process, stderr: URL) -> Observed {
            p.waitUntilExit()
            let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
            return Observed(status: status, stderr: (try? String(contentsOf: stderr, encoding: .utf8)) ?? "")
        }

        func start(_ executable: URL, _ args: [String], stdout: FileHandle? = nil) throws -> (Process, URL) {
            let p = Process()
            p.executableURL = executable
            p.arguments = args
            p.currentDirectoryURL = dir
            p.environment = ProcessInfo.processInfo.environment.merging(["DMA_TRACE": Fixtures.binary.path]) { $1 }
            let err = dir.appendingPathComponent("stderr-\(UUID().uuidString)")
            FileManager.default.createFile(atPath: err.path, contents: nil)
            p.standardOutput = stdout ?? FileHandle(forWritingAtPath: "/dev/null")
            p.standardError = try FileHandle(forWritingTo: err)
            try p.run()
            return (p, err)
        }

        func run(_ args: [String], stdout: FileHandle? = nil) throws -> Observed {
            let (p, err) = try start(Fixtures.binary, args, stdout: stdout)
            return finish(p, stderr: err)
        }

        /// bash, with the tool as $DMA_TRACE.
        func shell(_ script: String) throws -> Observed {
            let (p, err) = try start(URL(fileURLWithPath: "/bin/bash"), ["-c", script])
            return finish(p, stderr: err)
        }

        /// Starts the tool on an endless FIFO input (`input`), sends `sig` once the tool
        /// (or, for audit, its worker) has the input open.
        func interrupt(_ args: [String], input: String, with sig: Int32) throws -> Observed {
            let fifo = try OutputFaultTests.EndlessInput(in: dir, name: input, first: Data(OutputFaultTests.realText.utf8.prefix(20000)))
            let (p, err) = try start(Fixtures.binary, args)
            try Processes.waitFor("\(input) to be opened") {
                ([p.processIdentifier] + Processes.children(of: p.processIdentifier)).contains { Processes.hasOpen($0, fifo.path) }
            }
            kill(p.processIdentifier, sig)
            return finish(p, stderr: err)
        }
    }

    struct Row: CustomStringConvertible, Sendable {
        var tried: String
        var command: String
        /// The first line on standard error, exactly; "" for nothing at all.
        var sees: String
        var status: Int32
        var run: @Sendable (Context) throws -> Observed
        var description: String { tried }
    }

    static let bug = RuleRegistry.description(of: "unmap-size-mismatch")!.examples[0].ftraceText
    static let traceDatMagic = Data([0x17, 0x08, 0x44, 0x74, 0x72, 0x61, 0x63, 0x69, 0x6e, 0x67])

    static let rows: [Row] = [
        // Bad input.
        Row(tried: "A file that does not exist", command: "dma-trace analyze missing.dat",
            sees: "dma-trace: missing.dat: no such file", status: 2) { try $0.run(["analyze", "missing.dat"]) },
        Row(tried: "A directory given to `analyze`", command: "dma-trace analyze traces",
            sees: "dma-trace: traces: is a directory, not a trace file", status: 2) { c in
            try c.text("traces/a.txt", bug)
            return try c.run(["analyze", "traces"])
        },
        Row(tried: "An empty file", command: "dma-trace analyze empty.dat",
            sees: "dma-trace: empty.dat: is empty", status: 2) { c in
            try c.file("empty.dat", Data())
            return try c.run(["analyze", "empty.dat"])
        },
        Row(tried: "Text that is not a trace", command: "dma-trace analyze notes.txt",
            sees: "dma-trace: notes.txt: no ftrace event line could be read (2 unreadable lines)", status: 2) { c in
            try c.text("notes.txt", "shopping list\neggs\n")
            return try c.run(["analyze", "notes.txt"])
        },
        Row(tried: "64 KiB of random bytes", command: "dma-trace analyze junk.bin",
            sees: "dma-trace: junk.bin: is binary data, neither a trace.dat nor ftrace text", status: 2) { c in
            var rng = SplitMix(seed: 7)
            try c.file("junk.bin", Data((0..<65536).map { _ in UInt8(truncatingIfNeeded: rng.next()) }))
            return try c.run(["analyze", "junk.bin"])
        },
        Row(tried: "The trace.dat magic, then garbage", command: "dma-trace analyze magic.dat",
            sees: "dma-trace: magic.dat: has the trace.dat magic but a damaged header", status: 2) { c in
            try c.file("magic.dat", traceDatMagic.prefix(3) + Data("garbage".utf8))
            return try c.run(["analyze", "magic.dat"])
        },
        Row(tried: "A real trace.dat cut after 30,000 bytes", command: "dma-trace analyze cut.dat",
            sees: "dma-trace: cut.dat: trace.dat is damaged: section at byte 1566502 lies beyond the end of the file (30000 bytes): truncated?",
            status: 2) { c in
            try c.file("cut.dat", Data(contentsOf: URL(fileURLWithPath: Fixtures.sample("k6.12-nvme-e1000e-ahci-xhci.dat"))).prefix(30000))
            return try c.run(["analyze", "cut.dat"])
        },
        Row(tried: "One flipped bit in a compressed block of CPU data", command: "dma-trace analyze damaged.dat",
            sees: "dma-trace: damaged.dat: trace.dat is corrupted: CPU 0's data: compressed chunk 60 of 63 does not decompress (zstd: Data corruption detected)",
            status: 2) { c in
            var data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.sample("k6.12-swiotlb.dat")))
            data[1_747_971] ^= 0x10
            try c.file("damaged.dat", data)
            return try c.run(["analyze", "damaged.dat"])
        },
        Row(tried: "`audit` of a pattern that matches nothing (the other inputs are still reported)", command: "dma-trace audit 'nothing*.dat' bug.txt",
            sees: "dma-trace: nothing*.dat: pattern matches no file", status: 2) { c in
            try c.text("bug.txt", bug)
            return try c.run(["audit", "--quiet", "nothing*.dat", "bug.txt"])
        },
        Row(tried: "`audit` of a folder without traces", command: "dma-trace audit docs",
            sees: "dma-trace: docs: directory holds no *.dat, *.trace, *.txt or *.data file", status: 2) { c in
            try c.text("docs/README.md", "no traces here")
            return try c.run(["audit", "--quiet", "docs"])
        },
        Row(tried: "A mistake in .dma-trace.yml", command: "dma-trace audit --config bad.yml bug.txt",
            sees: "dma-trace: bad.yml:2: unknown key 'colour' (expected disabled_rules, severity, devices, suppressions, debuginfo, module_base, source_root)", status: 2) { c in
            try c.text("bug.txt", bug)
            try c.text("bad.yml", "disabled_rules: []\ncolour: blue\n")
            return try c.run(["audit", "--quiet", "--config", "bad.yml", "bug.txt"])
        },
        // Debug info (--debuginfo): a file that cannot be used is an error; one that does not fit the trace a warning.
        Row(tried: "`--debuginfo` naming a file that is not ELF", command: "dma-trace analyze --debuginfo notes.ko bug.txt",
            sees: "dma-trace: notes.ko: not a usable ELF file (not an ELF file)", status: 2) { c in
            try c.text("bug.txt", bug)
            try c.text("notes.ko", "not a module\n")
            return try c.run(["analyze", "--debuginfo", "notes.ko", "bug.txt"])
        },
        Row(tried: "`--debuginfo` naming a truncated module", command: "dma-trace analyze --debuginfo cut.ko bug.txt",
            sees: "dma-trace: cut.ko: has no readable DWARF debug information (stripped or damaged: give the unstripped .ko, its .ko.debug or the -dbg package's copy)", status: 2) { c in
            try c.text("bug.txt", bug)
            let ko = try Data(contentsOf: Fixtures.samples.appendingPathComponent("faultinject/modules/6.12.117+deb13-amd64/dmafi.ko"))
            try c.file("cut.ko", ko.prefix(4096))
            return try c.run(["analyze", "--debuginfo", "cut.ko", "bug.txt"])
        },
        Row(tried: "A module built for another kernel than the trace's (its frames stay symbol+offset)",
            command: "dma-trace analyze --debuginfo dmafi.ko --module-base dmafi=0xffffffffc0683000 stacks.dat",
            sees: "dma-trace: warning: dmafi.ko: built for kernel 7.3.4+deb13-amd64, the trace is from 6.12.117+deb13-amd64: frames of dmafi stay symbol+offset",
            status: 1) { c in
            try c.sample("faultinject/x86-6.12-plain-stacks.dat", as: "stacks.dat")
            try c.sample("faultinject/modules/7.3.4+deb13-amd64/dmafi.ko", as: "dmafi.ko")
            return try c.run(["analyze", "--format", "json", "--debuginfo", "dmafi.ko", "--module-base", "dmafi=0xffffffffc0683000", "stacks.dat"])
        },
        Row(tried: "A JSON file that is not a baseline", command: "dma-trace audit --baseline other.json bug.txt",
            sees: "dma-trace: other.json: is not a dma-trace baseline (no \"version\"; write one with --write-baseline)", status: 2) { c in
            try c.text("bug.txt", bug)
            try c.text("other.json", "{\"entries\": []}\n")
            return try c.run(["audit", "--quiet", "--baseline", "other.json", "bug.txt"])
        },
        // Bad usage: the words of the help.
        Row(tried: "A severity given as a number", command: "dma-trace analyze --min-severity 2 bug.txt",
            sees: "Error: The value '2' is invalid for '--min-severity <min-severity>'. Please provide one of 'note', 'warning' or 'error'.",
            status: 2) { c in
            try c.text("bug.txt", bug)
            return try c.run(["analyze", "--min-severity", "2", "bug.txt"])
        },
        Row(tried: "An unknown audit format", command: "dma-trace audit --format yaml bug.txt",
            sees: "Error: The value 'yaml' is invalid for '--format <format>'. Please provide one of 'text', 'json', 'sarif', 'junit' or 'github'.",
            status: 2) { c in
            try c.text("bug.txt", bug)
            return try c.run(["audit", "--format", "yaml", "bug.txt"])
        },
        // Faults of the machine while writing.
        Row(tried: "Standard output is a full device", command: "dma-trace analyze --format json bug.txt > /dev/full",
            sees: "dma-trace: cannot write standard output (/dev/full): No space left on device", status: 2) { c in
            try c.text("bug.txt", bug)
            return try c.run(["analyze", "--format", "json", "bug.txt"], stdout: FileHandle(forWritingAtPath: "/dev/full"))
        },
        Row(tried: "`--output` is a full device", command: "dma-trace audit --format sarif --output /dev/full bug.txt",
            sees: "dma-trace: cannot write /dev/full: No space left on device", status: 2) { c in
            try c.text("bug.txt", bug)
            return try c.run(["audit", "--quiet", "--format", "sarif", "--output", "/dev/full", "bug.txt"])
        },
        Row(tried: "`-o` into a folder that does not exist", command: "dma-trace report -o out/r.html bug.txt",
            sees: "dma-trace: cannot write out/r.html: No such file or directory", status: 2) { c in
            try c.text("bug.txt", bug)
            return try c.run(["report", "-o", "out/r.html", "bug.txt"])
        },
        Row(tried: "`--html` names a file", command: "dma-trace audit --html bug.txt bug.txt",
            sees: "dma-trace: cannot write bug.txt: Not a directory", status: 2) { c in
            try c.text("bug.txt", bug)
            return try c.run(["audit", "--quiet", "--html", "bug.txt", "bug.txt"])
        },
        Row(tried: "The file-size limit is hit half-way through a report (the old out.sarif stays, no temporary file is left)",
            command: "ulimit -f 4; dma-trace audit --format sarif -o out.sarif bug.txt",
            sees: "dma-trace: cannot write out.sarif: File too large", status: 2) { c in
            try c.text("bug.txt", bug)
            return try c.shell("ulimit -f 4; \"$DMA_TRACE\" audit --quiet --format sarif -o out.sarif bug.txt")
        },
        Row(tried: "The reader of standard output goes away", command: "dma-trace events big.dat | head -1",
            sees: "", status: 141) { c in
            try c.sample("k6.12-iommu.dat", as: "big.dat")
            return try c.shell("set -o pipefail; \"$DMA_TRACE\" events big.dat | head -1 >/dev/null")
        },
        Row(tried: "Ctrl-C (SIGINT) during `analyze`", command: "dma-trace analyze live.txt, then SIGINT",
            sees: "", status: 130) { try $0.interrupt(["analyze", "live.txt"], input: "live.txt", with: SIGINT) },
        Row(tried: "SIGTERM during `report` (no report file, no temporary file)", command: "dma-trace report -o r.html live.txt, then SIGTERM",
            sees: "", status: 143) { try $0.interrupt(["report", "-o", "r.html", "live.txt"], input: "live.txt", with: SIGTERM) },
        Row(tried: "SIGTERM during `audit` (its workers are killed first)", command: "dma-trace audit live.txt, then SIGTERM",
            sees: "", status: 143) { try $0.interrupt(["audit", "--quiet", "live.txt"], input: "live.txt", with: SIGTERM) },
        // Audit workers that fail (a stand-in worker script, see WorkerFaultTests).
        Row(tried: "An audit worker crashes (the other traces are still reported)", command: "dma-trace audit crash.txt bug.txt",
            sees: "dma-trace: crash.txt: the analysis worker crashed (signal 11, Segmentation fault)", status: 2) { c in
            try c.audit(["crash.txt", "bug.txt"])
        },
        Row(tried: "An audit worker is killed, as by the out-of-memory killer", command: "dma-trace audit oom.txt",
            sees: "dma-trace: oom.txt: the analysis worker was killed (SIGKILL, as the out-of-memory killer does)", status: 2) { c in
            try c.audit(["oom.txt"])
        },
        Row(tried: "An audit worker hangs", command: "dma-trace audit --timeout 1 hang.txt",
            sees: "dma-trace: hang.txt: the analysis did not finish within 1 s (--timeout); its worker was killed", status: 2) { c in
            try c.audit(["--timeout", "1", "hang.txt"])
        },
        Row(tried: "An audit worker prints a truncated document", command: "dma-trace audit truncated.txt",
            sees: "dma-trace: truncated.txt: the analysis worker exited 0 but printed 46 bytes that are not a complete analysis", status: 2) { c in
            try c.audit(["truncated.txt"])
        },
    ]

    @Test(arguments: rows.indices)
    func eachRowIsWhatTheUserSees(_ i: Int) throws {
        let row = Self.rows[i]
        let observed = try row.run(Context(dir: try Fixtures.scratch("table\(i)")))
        #expect(observed.status == row.status, "\(row.tried): \(observed.stderr)")
        let firstLine = observed.stderr.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        #expect(firstLine == row.sees, "\(row.tried)")
        if row.sees.isEmpty { #expect(observed.stderr.isEmpty, "\(row.tried)") }
        #expect(!observed.stderr.contains("Fatal error") && !observed.stderr.contains("Backtrac"))
    }

    static let begin = "<!-- The table is generated from Tests/DMATraceTests/BadInputTableTests.swift; a test checks it. -->"
    static let end = "<!-- end of the generated table -->"

    static var markdown: String {
        func cell(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|") }
        func status(_ s: Int32) -> String {
            let signals: [Int32: String] = [130: "SIGINT", 141: "SIGPIPE", 143: "SIGTERM"]
            return signals[s].map { "\(s): ended by \($0)" } ?? "\(s)"
        }
        var lines = ["| What was tried | Command | What the user sees on standard error | Exit status |", "| --- | --- | --- | --- |"]
        for r in rows {
            lines.append("| \(cell(r.tried)) | `\(cell(r.command))` | \(r.sees.isEmpty ? "nothing" : "`\(cell(r.sees))`") | \(status(r.status)) |")
        }
        return lines.joined(separator: "\n")
    }

    @Test func theDocumentedTableIsTheTestedOne() throws {
        let url = Fixtures.root.appendingPathComponent("Docs/bad-input.md")
        let page = try String(contentsOf: url, encoding: .utf8)
        let b = try #require(page.range(of: Self.begin), "Docs/bad-input.md lacks the table markers")
        let e = try #require(page.range(of: Self.end))
        let current = String(page[b.upperBound..<e.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
        if current != Self.markdown, ProcessInfo.processInfo.environment["DMA_TRACE_UPDATE_DOCS"] == "1" {
            try (String(page[..<b.upperBound]) + "\n" + Self.markdown + "\n" + String(page[e.lowerBound...])).write(to: url, atomically: true, encoding: .utf8)
            return
        }
        #expect(current == Self.markdown, "Docs/bad-input.md is stale: DMA_TRACE_UPDATE_DOCS=1 swift test --filter BadInputTableTests")
    }
}

extension BadInputTableTests.Context {
    /// `audit` with the misbehaving stand-in worker; every named trace holds the bug example.
    func audit(_ args: [String]) throws -> BadInputTableTests.Observed {
        for a in args where a.hasSuffix(".txt") { try text(a, BadInputTableTests.bug) }
        return try run(["audit", "--quiet", "--worker", try WorkerFaultTests.worker(in: dir)] + args)
    }
}
