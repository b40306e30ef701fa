import GearmanProtocol
import NIOCore

/// The limits the fuzzer decodes with: small, so a declared size cannot make it allocate much.
let limits = GearmanFrameDecoder.Limits(maxPacketSize: 1 << 20, maxFieldSize: 8192, maxTextLineLength: 8192)

/// Feeds the input to `GearmanFrameDecoder` as a connection would deliver it, and runs every
/// frame through what the server runs on it: packets are re-encoded and must decode back equal,
/// text lines are parsed as admin requests.
///
/// The first input byte chooses how the rest is split into reads: 0 delivers it in one piece,
/// any other value seeds a generator of chunk lengths of 1 to (value % 32 + 1) bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count > 0 else { return 0 }
    let input = UnsafeRawBufferPointer(start: start, count: count)
    let split = input[0]
    let stream = UnsafeRawBufferPointer(rebasing: input[1...])

    var decoder = GearmanFrameDecoder(limits: limits)
    var buffer = ByteBuffer()
    var chunks = ChunkLengths(seed: split)
    var offset = 0
    do {
        while offset < stream.count {
            let length = min(chunks.next(remaining: stream.count - offset), stream.count - offset)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: stream[offset..<(offset + length)]))
            offset += length
            // As NIO's ByteToMessageHandler: decode until the decoder asks for more bytes.
            while let frame = try decoder.decode(buffer: &buffer) {
                check(frame)
            }
        }
        while let frame = try decoder.decodeLast(buffer: &buffer, seenEOF: true) {
            check(frame)
        }
    } catch {
        // A bad stream is rejected with an error (the server closes the connection): fine, as
        // long as the error renders.
        _ = error.message
        _ = error.offendingBytes.count
    }
    return 0
}

/// Runs one decoded frame through the paths the server runs on it, checking cheap invariants.
func check(_ frame: GearmanFrame) {
    switch frame {
    case .packet(let packet, let magic):
        // Round trip: what we decoded, encoded again, decodes back equal (as one frame).
        var encoded = GearmanPacketEncoder.encode(packet, magic: magic)
        var again = GearmanFrameDecoder(limits: limits)
        do {
            guard case .packet(let decoded, let decodedMagic)? = try again.decode(buffer: &encoded) else {
                preconditionFailure("a re-encoded \(packet.type) did not decode as one packet")
            }
            precondition(decoded == packet && decodedMagic == magic, "a re-encoded \(packet.type) decoded differently")
            precondition(encoded.readableBytes == 0, "a re-encoded \(packet.type) left bytes over")
        } catch {
            preconditionFailure("a re-encoded \(packet.type) failed to decode: \(error.message)")
        }
        // The decimal numbers the server reads from packets.
        switch packet {
        case .workStatus(_, let numerator, let denominator):
            _ = DecimalText.leadingInteger(String(buffer: numerator))
            _ = DecimalText.leadingInteger(String(buffer: denominator))
        case .canDoTimeout(_, let timeout):
            _ = DecimalText.leadingInteger(String(buffer: timeout))
        case .submitJobEpoch(_, _, let epoch, _):
            _ = DecimalText.leadingInteger(String(buffer: epoch))
        default:
            break
        }
    case .text(let line):
        precondition(!line.readableBytesView.contains(UInt8(ascii: "\n")), "a text frame holds a newline")
        let request = AdminRequest(line: line)
        if case .invalid(let error) = request {
            _ = error.reply
        }
    }
}

/// A small deterministic generator (xorshift) of read lengths.
struct ChunkLengths {
    var state: UInt32
    let maximum: Int
    let whole: Bool

    init(seed: UInt8) {
        self.state = UInt32(seed) &* 0x9E37_79B9 | 1
        self.maximum = Int(seed % 32) + 1
        self.whole = seed == 0
    }

    mutating func next(remaining: Int) -> Int {
        if self.whole { return remaining }
        self.state ^= self.state << 13
        self.state ^= self.state >> 17
        self.state ^= self.state << 5
        return Int(self.state % UInt32(self.maximum)) + 1
    }
}
