import Foundation

/// Standard output with every write checked. Nothing is buffered here, so
/// nothing is lost at exit and a failure surfaces at the write that failed.
public enum StandardOutput {
    public static func write(_ text: String) throws {
        var text = text
        try text.withUTF8 { try writeAll(STDOUT_FILENO, UnsafeRawBufferPointer($0), destination: name) }
    }

    public static func write(_ data: Data) throws {
        try data.withUnsafeBytes { try writeAll(STDOUT_FILENO, $0, destination: name) }
    }

    /// "standard output (/dev/full)" when it is a file or device, so the message says where it went.
    static var name: String {
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/1")) ?? ""
        return target.hasPrefix("/") ? "standard output (\(target))" : "standard output"
    }
}

/// Messages for the user on standard error. Trace-derived text is escaped so a
/// hostile name cannot drive the terminal; a failing stderr is ignored (there is
/// nowhere left to report it).
public enum Diagnostics {
    public static func error(_ message: String) {
        emit("dma-trace: " + TerminalText.escape(message) + "\n")
    }

    /// Several lines, each escaped on its own.
    public static func lines(_ lines: [String]) {
        emit(lines.map { TerminalText.escape($0) + "\n" }.joined())
    }

    /// Progress output that owns its control characters (carriage returns).
    public static func raw(_ text: String) {
        emit(text)
    }

    private static func emit(_ text: String) {
        var text = text
        text.withUTF8 { try? writeAll(STDERR_FILENO, UnsafeRawBufferPointer($0), destination: "standard error") }
    }
}
