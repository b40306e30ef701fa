import Foundation
import GearlockCLI
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The terminal of `gearlock top`: keys read one at a time without echo (termios), the alternate
/// screen, a hidden cursor — and all of it put back by `restore()`. Signals stay on (ISIG), so
/// Ctrl-C still sends SIGINT, which `top` traps to quit cleanly.
final class TerminalScreen: Sendable {
    /// The terminal's settings before `enter()`, put back by `restore()`.
    private let saved: termios
    private let restored = Atomic<Bool>(false)

    /// Whether stdin and stdout are both a terminal (the live view needs both).
    static var isInteractive: Bool { isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1 }

    private init(saved: termios) {
        self.saved = saved
    }

    /// Switches the terminal to non-canonical, no-echo input, the alternate screen and a hidden cursor.
    static func enter() throws -> TerminalScreen {
        var settings = termios()
        guard tcgetattr(STDIN_FILENO, &settings) == 0 else {
            throw TerminalError(description: "cannot read the terminal's settings: \(String(cString: strerror(errno)))")
        }
        let screen = TerminalScreen(saved: settings)
        settings.c_lflag &= ~tcflag_t(ICANON | ECHO)
        guard tcsetattr(STDIN_FILENO, TCSANOW, &settings) == 0 else {
            throw TerminalError(description: "cannot change the terminal's settings: \(String(cString: strerror(errno)))")
        }
        emit(Escape.enterAlternateScreen + Escape.hideCursor + Escape.clearScreen)
        return screen
    }

    /// Shows the cursor, leaves the alternate screen and puts the terminal's settings back. Only
    /// the first call does anything.
    func restore() {
        guard !restored.exchange(true, ordering: .acquiringAndReleasing) else { return }
        Self.emit(Escape.showCursor + Escape.leaveAlternateScreen)
        var settings = saved
        _ = tcsetattr(STDIN_FILENO, TCSANOW, &settings)
    }

    /// Draws `lines` from the top-left corner over what was there.
    func draw(_ lines: [String]) {
        // Each line clears what an older, longer one left; the last has no line break, so that
        // the screen never scrolls, and everything below it is cleared.
        Self.emit(Escape.home + lines.map { $0 + Escape.clearToEndOfLine }.joined(separator: "\r\n") + Escape.clearBelow)
    }

    /// The terminal's size, when stdout is one that knows it.
    static func size() -> TopView.Size? {
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0, size.ws_col > 0 else { return nil }
        return TopView.Size(rows: Int(size.ws_row), columns: Int(size.ws_col))
    }

    /// Writes all of `text` to stdout.
    static func emit(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }

    enum Escape {
        static let enterAlternateScreen = "\u{1B}[?1049h"
        static let leaveAlternateScreen = "\u{1B}[?1049l"
        static let hideCursor = "\u{1B}[?25l"
        static let showCursor = "\u{1B}[?25h"
        static let clearScreen = "\u{1B}[2J"
        static let home = "\u{1B}[H"
        static let clearToEndOfLine = "\u{1B}[K"
        static let clearBelow = "\u{1B}[J"
    }
}

struct TerminalError: Error, CustomStringConvertible {
    var description: String
}

/// Reads stdin a byte at a time on a thread of its own (a blocked `read` must not hold one of
/// Swift's cooperative threads) until stopped.
final class KeyReader: Sendable {
    private let stopped = Atomic<Bool>(false)

    /// Starts reading; every byte goes to `onKey`; end of input or an error goes to `onEnd`.
    func start(onKey: @escaping @Sendable (UInt8) -> Void, onEnd: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            var byte: UInt8 = 0
            while !stopped.load(ordering: .acquiring) {
                // Wake every 100 ms to notice `stop()`.
                var entry = pollfd(fd: STDIN_FILENO, events: CShort(POLLIN), revents: 0)
                let ready = poll(&entry, 1, 100)
                if ready < 0 && errno == EINTR { continue }
                guard ready >= 0 else { return onEnd() }
                guard ready > 0 else { continue }
                let count = read(STDIN_FILENO, &byte, 1)
                if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                guard count == 1 else { return onEnd() }
                onKey(byte)
            }
        }
        thread.start()
    }

    func stop() {
        stopped.store(true, ordering: .releasing)
    }
}
