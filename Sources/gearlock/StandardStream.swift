import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Raw, binary-safe stdin/stdout/stderr for the client commands. The blocking reads and writes
/// run on NIO's thread pool, never on Swift's cooperative threads.
enum StandardStream {
    struct IOError: Error, CustomStringConvertible {
        var description: String
    }

    /// Writes `text` and a newline to stderr, whole (a short write is continued), for messages
    /// printed around a running command; a failed write is dropped.
    static func printError(_ text: String) {
        var bytes = Array((text + "\n").utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }

    /// Whether `descriptor` is a terminal.
    static func isTerminal(_ descriptor: CInt) -> Bool {
        isatty(descriptor) == 1
    }

    /// Everything on stdin up to EOF, byte for byte.
    static func readStandardInput() async throws -> ByteBuffer {
        try await NIOThreadPool.singleton.runIfActive {
            var buffer = ByteBufferAllocator().buffer(capacity: 64 << 10)
            while true {
                buffer.reserveCapacity(minimumWritableBytes: 64 << 10)
                let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { bytes in
                    read(STDIN_FILENO, bytes.baseAddress, bytes.count)
                }
                if count == 0 { return buffer }
                if count < 0 {
                    if errno == EINTR { continue }
                    if errno == EAGAIN { waitUntilReady(STDIN_FILENO, for: CShort(POLLIN)); continue }
                    throw IOError(description: "cannot read stdin: \(String(cString: strerror(errno)))")
                }
            }
        }
    }

    /// Writes all of `buffer` to `descriptor`.
    static func writeAll(_ buffer: ByteBuffer, to descriptor: CInt) async throws {
        guard buffer.readableBytes > 0 else { return }
        try await NIOThreadPool.singleton.runIfActive {
            try buffer.withUnsafeReadableBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    if written >= 0 {
                        offset += written
                    } else if errno == EINTR {
                        continue
                    } else if errno == EAGAIN {
                        waitUntilReady(descriptor, for: CShort(POLLOUT))
                    } else {
                        throw IOError(description: "cannot write: \(String(cString: strerror(errno)))")
                    }
                }
            }
        }
    }

    static func writeAll(_ text: String, to descriptor: CInt) async throws {
        try await writeAll(ByteBuffer(string: text), to: descriptor)
    }

    /// For a descriptor someone left non-blocking.
    private static func waitUntilReady(_ descriptor: CInt, for events: CShort) {
        var entry = pollfd(fd: descriptor, events: events, revents: 0)
        _ = poll(&entry, 1, -1)
    }
}
