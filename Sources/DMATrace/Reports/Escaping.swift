import Foundation
/// Trace text is attacker-controlled: a process names itself anything
/// (prctl PR_SET_NAME), device names and marker text come from the traced
/// machine, file names from whoever filled the folder. Each output escapes it
/// for where it goes (HTML: the template engine; JSON: the encoder).
public enum TerminalText {
    /// Control characters (C0, DEL, C1) as visible escapes: `\x1b`, `\n`, `\u{9b}`.
    public static func escape(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: isControl) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 8)
        for scalar in s.unicodeScalars {
            if isControl(scalar) { out += visible(scalar) } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    static func isControl(_ c: Unicode.Scalar) -> Bool {
        c.value < 0x20 || (c.value >= 0x7f && c.value <= 0x9f)
    }

    static func visible(_ c: Unicode.Scalar) -> String {
        switch c {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        default:
            let hex = String(c.value, radix: 16)
            return c.value < 0x80 ? "\\x" + (hex.count < 2 ? "0" + hex : hex) : "\\u{\(hex)}"
        }
    }
}

/// XML 1.0 forbids most C0 controls even as character references; a JUnit
/// reader rejects the whole file for one of them, so they are shown as `\x1b`.
public enum XMLText {
    public static func sanitize(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: isForbidden) else { return s }
        var out = ""
        for scalar in s.unicodeScalars {
            if isForbidden(scalar) { out += TerminalText.visible(scalar) } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    static func isForbidden(_ c: Unicode.Scalar) -> Bool {
        (c.value < 0x20 && c != "\t" && c != "\n" && c != "\r") || c.value == 0xFFFE || c.value == 0xFFFF
    }
}

/// HTML text: the five markup characters as references, and control characters the
/// HTML parser would pass through invisibly (ESC, NUL, BEL, DEL, C1) shown as `\x1b`.
/// Tab, LF and CR stay: they are whitespace, and the rule pages' text is laid out with them.
public enum HTMLText {
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count + 16)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n", "\r": out.unicodeScalars.append(c)
            default:
                if TerminalText.isControl(c) { out += TerminalText.visible(c) } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }
}

/// GitHub Actions workflow commands (docs.github.com, "Workflow commands for
/// GitHub Actions", escapeData / escapeProperty of @actions/core): a message
/// escapes `%`, CR and LF; a property also `:` and `,`. Other control
/// characters are shown as `\x1b`, since the log viewer renders ANSI colours.
public enum WorkflowCommandText {
    public static func data(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "%": out += "%25"
            case "\r": out += "%0D"
            case "\n": out += "%0A"
            default: if TerminalText.isControl(c) { out += TerminalText.visible(c) } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }

    public static func property(_ s: String) -> String {
        data(s).replacingOccurrences(of: ":", with: "%3A").replacingOccurrences(of: ",", with: "%2C")
    }
}

/// The JSON encoder escapes C0 controls itself. DEL and the C1 controls are valid JSON
/// unescaped, but some terminals act on them (U+009B is CSI), and NDJSON is read in
/// terminals: every JSON output escapes them too. Outside strings JSON is plain ASCII,
/// so the bytes can only be inside a string.
final class TerminalSafeJSONEncoder: JSONEncoder, @unchecked Sendable {
    override func encode<T: Encodable>(_ value: T) throws -> Data {
        Self.escapeDELAndC1(try super.encode(value))
    }

    static func escapeDELAndC1(_ data: Data) -> Data {
        guard data.contains(where: { $0 == 0x7f || $0 == 0xc2 }) else { return data }
        var out = Data()
        out.reserveCapacity(data.count + 16)
        var i = data.startIndex
        while i < data.endIndex {
            let b = data[i]
            let next = data.index(after: i)
            if b == 0x7f {
                out.append(contentsOf: Array("\\u007f".utf8))
            } else if b == 0xc2, next < data.endIndex, (0x80...0x9f).contains(data[next]) {
                out.append(contentsOf: Array(String(format: "\\u%04x", data[next]).utf8))
                i = data.index(after: next)
                continue
            } else {
                out.append(b)
            }
            i = next
        }
        return out
    }
}
