import Foundation

/// A write that did not reach its destination: names the destination and the OS error.
public struct OutputError: Error, CustomStringConvertible, Sendable {
    public var destination: String
    public var code: Int32

    public init(destination: String, code: Int32) {
        self.destination = destination
        self.code = code
    }

    /// The reader went away (`dma-trace events big.dat | head`): not a failure of ours.
    public var isClosedPipe: Bool { code == EPIPE }

    public var description: String { "cannot write \(destination): \(String(cString: strerror(code)))" }
}

/// Writes every byte to `fd`, resuming after partial writes and signals; throws on the first failure.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, destination: @autoclosure () -> String) throws {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            throw OutputError(destination: destination(), code: errno)
        }
        offset += n
    }
}
