public import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reads `handle` until EOF, retrying reads a signal interrupted. Foundation's
/// `readDataToEndOfFile` traps on EINTR, which a busy test process with many children sees.
public func readToEnd(_ handle: FileHandle) -> Data {
    let descriptor = handle.fileDescriptor
    var data = Data()
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count > 0 {
            data.append(contentsOf: chunk[0..<count])
        } else if count == 0 || errno != EINTR {
            return data
        }
    }
}
