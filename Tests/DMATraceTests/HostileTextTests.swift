import Foundation
import Testing
@testable import DMATrace

/// Trace text is attacker-controlled. Tests/Fixtures/hostile.dat (made from a real
/// recording by Scripts/make-hostile-trace.py) has task names, device names and markers
/// holding escape sequences, CR, LF, `%`, `:`, `,` and workflow commands; here it also
/// gets a hostile file name. Every format must carry them without letting them act.
@Suite struct HostileTextTests {
    static let fixture = Fixtures.root.appendingPathComponent("Tests/Fixtures/hostile.dat").path
    static let hostileName = "trace\u{1b}[31m\n::error::x,y%.dat"

    /// Our own colour codes, the only escape sequences a text report may hold.
    static let ownColours = ["\u{1b}[0m", "\u{1b}[1m", "\u{1b}[1;31m", "\u{1b}[1;33m", "\u{1b}[1;36m"]

    func rawControls(_ text: String) -> [String] {
        var rest = text
        for c in Self.ownColours { rest = rest.replacingOccurrences(of: c, with: "") }
        return rest.unicodeScalars.filter { ($0.value < 0x20 && $0 != "\n") || (0x7f...0x9f).contains($0.value) }
            .map { String(format: "U+%04X", $0.value) }
    }

    func copy(_ name: String = #function) throws -> (dir: URL, trace: String) {
        let dir = try Fixtures.scratch(name)
        let trace = dir.appendingPathComponent(Self.hostileName).path
        try FileManager.default.copyItem(atPath: Self.fixture, toPath: trace)
        return (dir, trace)
    }

    @Test func theFixtureIsARealTraceThatTraceCmdReads() throws {
        let traceCmd = try #require(Fixtures.which("trace-cmd"))
        let r = try Fixtures.run(["report", Self.fixture], executable: traceCmd)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("evil\u{1b}[31mRED") && r.stdout.contains("0\n::error::X"), "trace-cmd passes the hostile text through as it is")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: Self.fixture)[.size] as? Int)
        #expect(size <= 200_000)
    }

    @Test func analyzeSeesTheHostileNames() throws {
        let result = try Analyzer.analyze(path: Self.fixture)
        #expect(Set(result.devices.map(\.name)).isSuperset(of: ["0\n::error::X", "\u{1b}[31mRED\r,:%", "d\n::warning:"]))
        #expect(result.findings.contains { $0.task == "\u{1b}]0;title\u{07}" && $0.marker == "\u{1b}]0;\nloading drivers" })
    }

    @Test(arguments: [["analyze", "--color", "always", "TRACE"], ["analyze", "TRACE"], ["events", "TRACE"], ["info", "TRACE"]])
    func theTerminalSeesEscapesNotControlCharacters(_ args: [String]) throws {
        let (_, trace) = try copy("terminal\(args.count)\(args[0])")
        let r = try Fixtures.run(args.map { $0 == "TRACE" ? trace : $0 })
        #expect(r.status == 0, "\(r.stderr)")
        #expect(rawControls(r.stdout).isEmpty, "\(args): raw \(Set(rawControls(r.stdout)))")
        if args[0] != "events" { #expect(r.stdout.contains("trace\\x1b[31m\\n::error::x,y%.dat"), "the file name, escaped") }
        switch args[0] {
        case "events": #expect(r.stdout.contains("evil\\x1b[31mRED-1") && r.stdout.contains("\\x1b]0;\\n::error::XY"))
        case "info": #expect(r.stdout.contains("0\\n::error::X"))
        default: #expect(r.stdout.contains("\\x1b]0;title\\x07-31") && r.stdout.contains("0\\n::error::X"))
        }
    }

    @Test func ndjsonRoundTripsEveryByte() throws {
        let r = try Fixtures.run(["events", "--json", Self.fixture])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        var devices = Set<String>(), tasks = Set<String>()
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            if let d = object["device"] as? String { devices.insert(d) }
            if let t = object["task"] as? String { tasks.insert(t) }
        }
        #expect(devices.contains("0\n::error::X") && devices.contains("\u{1b}[31mRED\r,:%"))
        #expect(tasks.contains("evil\u{1b}[31mRED") && tasks.contains("x\r::error::pwn"))
        #expect(rawControls(r.stdout).isEmpty, "JSON escapes control characters")
    }

    @Test func everyAuditFormatKeepsTheTextInert() throws {
        let (dir, trace) = try copy()
        let out = { (name: String) in dir.appendingPathComponent(name).path }
        // A second, unreadable file with a hostile name: the error path escapes too.
        let broken = dir.appendingPathComponent("broken\u{1b}[2J\n::error::z.dat").path
        try Data([0x17, 0x08, 0x44, 0x74, 0x72, 0x61, 0x63, 0x69, 0x6e, 0x67, 0, 1]).write(to: URL(fileURLWithPath: broken))
        let r = try Fixtures.run(["audit", "--quiet", "--fail-on", "none", "--format", "text", "-o", out("t.txt"),
                                  "--format", "json", "-o", out("j.json"), "--format", "sarif", "-o", out("s.sarif"),
                                  "--format", "junit", "-o", out("j.xml"), "--format", "github", "-o", out("g.txt"),
                                  "--html", out("html"), trace, broken])
        #expect(r.status == 2, "the broken file: \(r.stderr)")
        #expect(rawControls(r.stderr).isEmpty && r.stderr.contains("broken\\x1b[2J\\n::error::z.dat"), "\(r.stderr)")

        let text = try String(contentsOfFile: out("t.txt"), encoding: .utf8)
        #expect(rawControls(text).isEmpty, "\(Set(rawControls(text)))")
        #expect(text.contains("0\\n::error::X"))

        // JSON and SARIF: valid, and the names come back byte for byte.
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out("j.json")))) as? [String: Any])
        let analysis = try #require((json["traces"] as? [[String: Any]])?.first { ($0["path"] as? String) == trace }?["analysis"] as? [String: Any])
        let findings = try #require(analysis["findings"] as? [[String: Any]])
        #expect(findings.count == 3)
        #expect(findings.contains { $0["device"] as? String == "0\n::error::X" })
        let python = try #require(Fixtures.which("python3"))
        let sarifCheck = try Fixtures.run([Fixtures.root.appendingPathComponent("Scripts/validate-sarif.py").path, out("s.sarif")], executable: python)
        #expect(sarifCheck.status == 0, "\(sarifCheck.stdout)\(sarifCheck.stderr)")
        let sarif = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out("s.sarif")))) as? [String: Any])
        let results = try #require(((sarif["runs"] as? [[String: Any]])?.first?["results"]) as? [[String: Any]])
        #expect(results.contains { (($0["message"] as? [String: Any])?["text"] as? String)?.hasPrefix("\u{1b}[31mRED\r,:%: ") == true })

        // JUnit: well-formed XML 1.0 although ESC, BEL, VT and FF are not allowed in it.
        let junitCheck = try Fixtures.run([Fixtures.root.appendingPathComponent("Scripts/validate-junit.py").path, out("j.xml")], executable: python)
        #expect(junitCheck.status == 0, "\(junitCheck.stderr)")
        let junit = try String(contentsOfFile: out("j.xml"), encoding: .utf8)
        #expect(junit.contains("\\x1b[31mRED") && !junit.contains("\u{1b}"))

        // GitHub: exactly one workflow command per finding or unreadable file, none injected.
        let github = try String(contentsOfFile: out("g.txt"), encoding: .utf8)
        let commands = github.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(commands.count == findings.count + 1, "\(commands)")
        let shape = try Regex(#"^::(error|warning|notice) file=[^:,\r\n]*,title=[^:,\r\n]*::[^\r\n]*$"#)
        for c in commands {
            #expect(c.wholeMatch(of: shape) != nil, "\(c)")
            #expect(rawControls(String(c)).isEmpty, "\(c)")
        }
        #expect(github.contains("file=\(WorkflowCommandText.property(trace))"))
        #expect(github.contains("title=dma-trace coherent-leak (0%0A%3A%3Aerror%3A%3AX)::"))

        // HTML: the template engine escapes; the index lists both files.
        let index = try String(contentsOfFile: out("html/index.html"), encoding: .utf8)
        #expect(index.contains("::error::x,y%.dat") && index.contains("::error::z.dat"))
    }

    @Test func escapingFunctions() {
        #expect(TerminalText.escape("a\u{1b}[31mb\n\r\t\u{7f}\u{9b}c") == "a\\x1b[31mb\\n\\r\\t\\x7f\\u{9b}c")
        #expect(TerminalText.escape("plain 0000:00:05.0 – ü") == "plain 0000:00:05.0 – ü")
        #expect(XMLText.sanitize("a\u{1b}b\nc\td\u{0}e\u{FFFE}") == "a\\x1bb\nc\td\\x00e\\u{fffe}")
        // GitHub's documented escaping (@actions/core escapeData / escapeProperty).
        #expect(WorkflowCommandText.data("50% done\r\n::error::x") == "50%25 done%0D%0A::error::x")
        #expect(WorkflowCommandText.property("a:b,c%\n") == "a%3Ab%2Cc%25%0A")
    }
}

extension HostileTextTests {
    @Test func jsonEscapesDELAndC1() throws {
        let data = try JSONEncoder.stable().encode(["k": "a\u{7f}b\u{9b}c\u{1b}d\u{a0}é"])
        #expect(String(decoding: data, as: UTF8.self) == #"{"k":"a\u007fb\u009bc\u001bd\#u{a0}é"}"#)
        #expect(try JSONDecoder().decode([String: String].self, from: data) == ["k": "a\u{7f}b\u{9b}c\u{1b}d\u{a0}é"])
    }
}
