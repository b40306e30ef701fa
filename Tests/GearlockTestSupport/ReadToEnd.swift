public import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reads `handle` until EOF, retrying reads a signal interrupted. Foundation's
/// `readDataToEndOfFile` traps on EINTR, which a busy test process with many children sees.
public func readToEnd(_ handle: FileHandle) -> Data {
    var data = Data()
    readChunks(from: handle.fileDescriptor) { data.append($0) }
    return data
}

/// Reads `descriptor` until EOF (or an error other than EINTR), handing `body` each chunk as it arrives.
public func readChunks(from descriptor: CInt, _ body: (Data) -> Void) {
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count > 0 {
            body(Data(chunk[0..<count]))
        } else if count == 0 || errno != EINTR {
            return
        }
    }
}
