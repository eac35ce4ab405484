import Foundation
import Testing
@testable import DMATrace

/// Faults of the machine while writing: a full device, a file-size limit in the
/// middle of a file, a reader that goes away, a signal in the middle of the work.
@Suite struct OutputFaultTests {
    static let bugText = RuleRegistry.description(of: "unmap-size-mismatch")!.examples[0].ftraceText

    /// A small trace with one finding, and the real recording next to it.
    func inputs(_ name: String = #function) throws -> (dir: URL, bug: String) {
        let dir = try Fixtures.scratch(name)
        let bug = dir.appendingPathComponent("bug.txt")
        try Self.bugText.write(to: bug, atomically: true, encoding: .utf8)
        return (dir, bug.path)
    }

    func temporaryFiles(under dir: URL) -> [String] {
        (FileManager.default.enumerator(atPath: dir.path)?.allObjects as? [String] ?? []).filter { $0.contains(".tmp-") }
    }

    static let fullDeviceCases: [(args: [String], stdoutToFullDevice: Bool, message: String)] = [
        (["analyze", "BUG"], true, "cannot write standard output (/dev/full): No space left on device"),
        (["analyze", "--format", "json", "BUG"], true, "cannot write standard output (/dev/full): No space left on device"),
        (["info", "--json", "BUG"], true, "cannot write standard output (/dev/full): No space left on device"),
        (["events", "BUG"], true, "cannot write standard output (/dev/full): No space left on device"),
        (["rules"], true, "cannot write standard output (/dev/full): No space left on device"),
        (["analyze", "--help"], true, "cannot write standard output (/dev/full): No space left on device"),
        (["audit", "--quiet", "BUG"], true, "cannot write standard output (/dev/full): No space left on device"),
        (["audit", "--quiet", "--format", "sarif", "--output", "/dev/full", "BUG"], false, "cannot write /dev/full: No space left on device"),
        (["audit", "--quiet", "--format", "junit", "-o", "/dev/full", "BUG"], false, "cannot write /dev/full: No space left on device"),
        (["audit", "--quiet", "--write-baseline", "/dev/full", "BUG"], false, "cannot write /dev/full: No space left on device"),
        (["audit", "--quiet", "--html", "/dev/full", "BUG"], false, "cannot write /dev/full: Not a directory"),
        (["report", "-o", "/dev/full", "BUG"], false, "cannot write /dev/full: No space left on device"),
    ]

    /// The issue's first report: `analyze --format json TRACE > /dev/full` died with SIGILL,
    /// and `audit --output /dev/full` exited 0 (and replaced /dev/full with a regular file).
    @Test(arguments: fullDeviceCases.indices)
    func aFullDeviceIsAnErrorNamingIt(_ i: Int) throws {
        let c = Self.fullDeviceCases[i]
        var info = stat()
        try #require(stat("/dev/full", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR, "/dev/full must be the kernel's full device")
        let (dir, bug) = try inputs("full\(i)")
        let stdout = c.stdoutToFullDevice ? FileHandle(forWritingAtPath: "/dev/full") : nil
        let run = try Processes.start(c.args.map { $0 == "BUG" ? bug : $0 }, in: dir, stdout: stdout)
        run.process.waitUntilExit()
        #expect(run.process.terminationReason == .exit && run.process.terminationStatus == 2, "\(c.args): \(run.stderr)")
        #expect(run.stderr == "dma-trace: \(c.message)\n", "\(c.args)")
        #expect(stat("/dev/full", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR, "/dev/full is still a device")
    }

    /// `ulimit -f` makes the kernel refuse a write half-way through a file (EFBIG):
    /// every output that did not fit keeps its old content, and no temporary file is left.
    @Test func aFileSizeLimitMidWriteKeepsTheOldFiles() throws {
        let (dir, bug) = try inputs()
        let sarif = dir.appendingPathComponent("out.sarif"), junit = dir.appendingPathComponent("out.xml")
        let html = dir.appendingPathComponent("html"), index = html.appendingPathComponent("index.html")
        try FileManager.default.createDirectory(at: html, withIntermediateDirectories: true)
        for f in [sarif, junit, index] { try "OLD\n".write(to: f, atomically: false, encoding: .utf8) }
        // 4 blocks of 512 bytes: the small bug trace's SARIF, JUnit and HTML are all larger.
        let r = try Fixtures.run(["-c", "ulimit -f 4 && exec \"$0\" \"$@\"", Fixtures.binary.path,
                                  "audit", "--quiet", "--format", "sarif", "-o", sarif.path, "--format", "junit", "-o", junit.path,
                                  "--html", html.path, bug], executable: "/bin/sh")
        #expect(r.status == 2, "\(r.stderr)")
        for f in [sarif, junit] {
            #expect(r.stderr.contains("dma-trace: cannot write \(f.path): File too large\n"), "\(r.stderr)")
            #expect(try String(contentsOf: f, encoding: .utf8) == "OLD\n")
        }
        #expect(r.stderr.contains("html/001-bug.txt.html: File too large"), "\(r.stderr)")
        #expect(try String(contentsOf: index, encoding: .utf8) == "OLD\n", "the index is written last, after every page")
        #expect(temporaryFiles(under: dir).isEmpty, "\(temporaryFiles(under: dir))")
    }

    /// `dma-trace events big.dat | head`: the tool ends as `cat` would, by SIGPIPE
    /// (status 141 in the shell), without a message.
    @Test(arguments: [["events", "TRACE"], ["events", "--json", "TRACE"], ["analyze", "TRACE"], ["audit", "--quiet", "--jobs", "1", "TRACE"]])
    func aClosedPipeEndsQuietly(_ args: [String]) throws {
        let trace = Fixtures.sample("k6.12-iommu.dat")
        let script = "set -o pipefail; \"$@\" | head -1 >/dev/null; echo \"status ${PIPESTATUS[0]}\""
        let r = try Fixtures.run(["-c", script, "sh", Fixtures.binary.path] + args.map { $0 == "TRACE" ? trace : $0 }, executable: "/bin/bash")
        #expect(r.stderr.isEmpty, "\(args): \(r.stderr)")
        if args[0] == "events" {
            #expect(r.stdout == "status 141\n", "\(args): several MB of events cannot fit in a pipe")
        } else {
            // A report small enough to fit in the pipe is written before head exits.
            #expect(r.stdout == "status 141\n" || r.stdout == "status 0\n", "\(args): \(r.stdout)")
        }
    }

    /// A FIFO that never ends stands for a long analysis: the process is certainly in the
    /// middle of its work when the signal comes.
    final class EndlessInput {
        let path: String
        let writer: Int32
        init(in dir: URL, name: String, first bytes: Data) throws {
            path = dir.appendingPathComponent(name).path
            try #require(mkfifo(path, 0o600) == 0)
            // Read-write: opening does not wait for a reader, and the FIFO never reaches its end.
            writer = open(path, O_RDWR)
            try #require(writer >= 0)
            _ = bytes.withUnsafeBytes { write(writer, $0.baseAddress, $0.count) }
        }
        deinit { close(writer) }
    }

    static let realText = try! String(contentsOfFile: Fixtures.sample("k7.3-tracefs.txt"), encoding: .utf8)

    @Test(arguments: [(["analyze", "INPUT"], SIGINT), (["analyze", "INPUT"], SIGTERM),
                      (["report", "-o", "OUT", "INPUT"], SIGINT), (["report", "-o", "OUT", "INPUT"], SIGTERM)])
    func aSignalDuringTheAnalysisEndsByThatSignal(_ args: [String], _ sig: Int32) throws {
        let dir = try Fixtures.scratch("signal\(args[0])\(sig)")
        let input = try EndlessInput(in: dir, name: "live.txt", first: Data(Self.realText.utf8.prefix(20000)))
        let out = dir.appendingPathComponent("report.html")
        let run = try Processes.start(args.map { $0 == "INPUT" ? input.path : $0 == "OUT" ? out.path : $0 }, in: dir)
        try Processes.waitFor("the analysis to open its input") { Processes.hasOpen(run.pid, input.path) }
        kill(run.pid, sig)
        run.process.waitUntilExit()
        // A shell reports this as 128 + the signal: 130 for SIGINT, 143 for SIGTERM.
        #expect(run.process.terminationReason == .uncaughtSignal && run.process.terminationStatus == sig)
        #expect(run.stderr.isEmpty, "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
        #expect(temporaryFiles(under: dir).isEmpty)
    }

    /// The signal arrives while the new file is complete but not yet in place: strace holds
    /// the tool's main thread at the end of its fsync of the temporary file (for up to 60 s),
    /// and the test sends SIGTERM then. The temporary file goes while the main thread is
    /// still held, and once it is let go the old file is still there: the rename never came.
    /// (That the process ends by the signal is checked without a tracer above.)
    @Test(arguments: [["report", "-o", "OUT", "BUG"], ["audit", "--quiet", "--format", "sarif", "-o", "OUT", "BUG"],
                      ["audit", "--quiet", "--write-baseline", "OUT", "BUG"]])
    func aSignalBeforeTheRenameKeepsTheOldFile(_ args: [String]) throws {
        let strace = try #require(Fixtures.which("strace"), "Scripts/setup.sh installs strace")
        let (dir, bug) = try inputs("rename\(args.count)\(args[args.count - 3])")
        let out = dir.appendingPathComponent("output")
        try "OLD\n".write(to: out, atomically: false, encoding: .utf8)
        let run = try Processes.start(["-o", "/dev/null", "-e", "trace=fsync", "-e", "inject=fsync:delay_exit=60000000:when=1",
                                       Fixtures.binary.path] + args.map { $0 == "BUG" ? bug : $0 == "OUT" ? out.path : $0 },
                                      executable: strace, in: dir)
        defer {
            kill(run.pid, SIGKILL)
            run.process.waitUntilExit()
        }
        try Processes.waitFor("the temporary file") { !temporaryFiles(under: dir).isEmpty }
        let tool = try #require(Processes.children(of: run.pid).first)
        // Signalled any earlier, the main thread itself may take the signal, and strace holds it.
        try Processes.waitFor("the main thread to be held in fsync") { Self.heldInFsync(tool) }
        kill(tool, SIGTERM)
        // The main thread is still frozen: only the cleanup thread can have removed it.
        try Processes.waitFor("the cleanup to remove the temporary file") { temporaryFiles(under: dir).isEmpty }
        // Ending strace releases the main thread, which finds the process ending.
        kill(run.pid, SIGKILL)
        try Processes.waitFor("the tool to end") { !Processes.isAlive(tool) }
        #expect(try String(contentsOf: out, encoding: .utf8) == "OLD\n")
        #expect(temporaryFiles(under: dir).isEmpty, "\(temporaryFiles(under: dir))")
    }

    /// Stopped by the tracer inside fsync(2) (/proc/PID/syscall starts with its number).
    static func heldInFsync(_ pid: pid_t) -> Bool {
        #if arch(x86_64)
        let fsync = "74"
        #else
        let fsync = "82"  // arm64's generic syscall table
        #endif
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let syscall = (try? String(contentsOfFile: "/proc/\(pid)/syscall", encoding: .utf8)) ?? ""
        return status.contains("State:\tt") && syscall.hasPrefix(fsync + " ")
    }

    /// SIGINT while the isolated probe child is opening a trace.dat (it is blocked reading a
    /// FIFO): the parent ends by the signal and the probe child does not outlive it.
    @Test(arguments: [SIGINT, SIGTERM])
    func aSignalDuringTheProbeLeavesNoChild(_ sig: Int32) throws {
        let dir = try Fixtures.scratch("probe\(sig)")
        let head = try Data(contentsOf: URL(fileURLWithPath: Fixtures.sample("k6.12-iommu.dat"))).prefix(4096)
        let input = try EndlessInput(in: dir, name: "probe-\(sig).dat", first: head)
        let run = try Processes.start(["analyze", input.path], in: dir)
        try Processes.waitFor("the probe child to start") { Processes.living(commandLineContaining: input.path).count == 2 }
        let probe = try #require(Processes.living(commandLineContaining: input.path).first { $0 != run.pid })
        kill(run.pid, sig)
        run.process.waitUntilExit()
        #expect(run.process.terminationReason == .uncaughtSignal && run.process.terminationStatus == sig)
        try Processes.waitFor("the probe child \(probe) to end", seconds: 10) { !Processes.isAlive(probe) }
    }

    /// A signal ignored from the start (nohup, a shell's background job) stays ignored.
    @Test func anInheritedIgnoredSignalStaysIgnored() throws {
        let dir = try Fixtures.scratch()
        let input = try EndlessInput(in: dir, name: "ignored.txt", first: Data(Self.realText.utf8.prefix(20000)))
        let run = try Processes.start(["-c", "trap '' HUP; exec \"$0\" analyze \"$1\"", Fixtures.binary.path, input.path],
                                      executable: "/bin/sh", in: dir)
        try Processes.waitFor("the analysis to open its input") { Processes.hasOpen(run.pid, input.path) }
        kill(run.pid, SIGHUP)
        kill(run.pid, SIGTERM)
        run.process.waitUntilExit()
        #expect(run.process.terminationReason == .uncaughtSignal && run.process.terminationStatus == SIGTERM,
                "SIGHUP was ignored, SIGTERM then ended it")
    }

    /// In-process: what a replacement keeps of the old file, and the OS error when it cannot be done.
    @Test func atomicReplacementKeepsModeAndLinks() throws {
        let dir = try Fixtures.scratch()
        let file = dir.appendingPathComponent("report.sarif").path
        try "old".write(toFile: file, atomically: false, encoding: .utf8)
        chmod(file, 0o640)
        try AtomicFile.write("new", to: file)
        var info = stat()
        #expect(stat(file, &info) == 0 && info.st_mode & 0o777 == 0o640)
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "new")
        // A link is followed: its target is replaced, the link stays a link.
        let link = dir.appendingPathComponent("latest.sarif").path
        #expect(symlink(file, link) == 0)
        try AtomicFile.write("newer", to: link)
        #expect(lstat(link, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK)
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "newer")
        for (path, problem) in [(dir.path, "Is a directory"), (dir.appendingPathComponent("no/such/x.json").path, "No such file or directory")] {
            do {
                try AtomicFile.write("x", to: path)
                Issue.record("wrote \(path)")
            } catch let e as OutputError {
                #expect(e.description == "cannot write \(path): \(problem)")
            }
        }
        #expect(temporaryFiles(under: dir).isEmpty)
    }
}
