import GearmanProtocol
import NIOCore
import Testing

@testable import GearmanServer

/// A large payload arrives as a slice of a (up to 1 MiB) read buffer. A queued job must not keep that
/// buffer alive, but copying every foreground payload costs more than it saves for jobs that end at
/// once: background payloads are copied at submission, foreground ones only when the job is still
/// alive `compactionDelay` later.
@Suite("Payloads sliced from read buffers")
struct PayloadCompactionTests {
    /// A 64 KiB payload that is a slice of a 1 MiB buffer, as the frame decoder hands it over.
    static func slicedPayload(_ byte: UInt8 = 0x61) -> ByteBuffer {
        var readBuffer = ByteBuffer(repeating: byte, count: 1 << 20)
        readBuffer.moveReaderIndex(forwardBy: 4096)
        return readBuffer.readSlice(length: 64 * 1024)!
    }

    static func submission(_ payload: ByteBuffer, background: Bool) -> GearmanPacket {
        .submitJob(function: buf("f"), unique: buf(""), payload: payload, priority: .normal, background: background)
    }

    func payload(of handle: ByteBuffer, in harness: Harness) throws -> ByteBuffer {
        try #require(harness.machine.job(withHandle: handle)).payload
    }

    /// Moves the clock `first` ms and fires the timer: the job's payload must still be the slice; then
    /// `second` ms more: it must be a copy of its own, which is returned.
    func copiedOut(
        _ handle: ByteBuffer, in harness: Harness, stillSlicedAfter first: UInt64, copiedAfter second: UInt64,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> ByteBuffer {
        harness.clock.advance(milliseconds: first)
        harness.fireTimer()
        #expect(try payload(of: handle, in: harness).storageCapacity >= 1 << 20, "not yet", sourceLocation: sourceLocation)
        harness.clock.advance(milliseconds: second)
        harness.fireTimer()
        let copied = try payload(of: handle, in: harness)
        #expect(copied.storageCapacity < 2 * copied.readableBytes, "copied out", sourceLocation: sourceLocation)
        return copied
    }

    @Test("a foreground job keeps its slice until the delay passes, then holds a copy of its own")
    func foregroundIsCopiedLater() throws {
        let harness = Harness()
        let client = harness.connect()
        let sliced = Self.slicedPayload()
        let handle = try harness.submit(Self.submission(sliced, background: false), from: client)
        #expect(try payload(of: handle, in: harness).storageCapacity >= 1 << 20, "not copied at submission")
        let deadline = try #require(harness.machine.nextTimerDeadline)
        #expect(deadline == harness.clock.monotonicNanoseconds + Machine.compactionDelayNanoseconds)

        let copied = try copiedOut(handle, in: harness, stillSlicedAfter: 99, copiedAfter: 1)
        #expect(copied == sliced, "byte for byte")
        #expect(harness.machine.nextTimerDeadline == nil, "nothing left to do")

        // The worker still gets the payload whole.
        let worker = harness.worker("f")
        let assigned = harness.send(.grabJob, from: worker).packets(to: worker)
        #expect(assigned == [.jobAssign(handle: handle, function: buf("f"), payload: sliced)])
    }

    @Test("a background job's payload is copied at once")
    func backgroundIsCopiedAtOnce() throws {
        let harness = Harness()
        let client = harness.connect()
        let handle = try harness.submit(Self.submission(Self.slicedPayload(), background: true), from: client)
        let payload = try payload(of: handle, in: harness)
        #expect(payload.storageCapacity < 2 * payload.readableBytes)
        #expect(harness.machine.nextTimerDeadline == nil)
    }

    @Test("a job that ended before the delay is skipped; a later job in its slot is not confused with it")
    func endedJobIsSkipped() throws {
        let harness = Harness()
        let client = harness.connect()
        let worker = harness.worker("f")
        let first = try harness.submit(Self.submission(Self.slicedPayload(0x61), background: false), from: client)
        _ = harness.send(.grabJob, from: worker)
        harness.send(.workComplete(handle: first, payload: buf("done")), from: worker)
        #expect(harness.machine.job(withHandle: first) == nil)

        // A new job, probably in the freed slot, submitted later: its own deadline, not the first's.
        harness.clock.advance(milliseconds: 60)
        let second = try harness.submit(Self.submission(Self.slicedPayload(0x62), background: false), from: client)
        // 40 ms on, the first job's deadline has passed but not the second's.
        let copied = try copiedOut(second, in: harness, stillSlicedAfter: 40, copiedAfter: 60)
        #expect(copied == Self.slicedPayload(0x62))
    }

    @Test("small payloads share the job's own allocation and are never deferred")
    func smallPayloadsArePacked() throws {
        let harness = Harness()
        let client = harness.connect()
        var readBuffer = ByteBuffer(repeating: 0x63, count: 1 << 20)
        let small = readBuffer.readSlice(length: 100)!
        let handle = try harness.submit(Self.submission(small, background: false), from: client)
        let payload = try payload(of: handle, in: harness)
        #expect(payload.storageCapacity < 4096 + 200 && payload == small)
        #expect(harness.machine.nextTimerDeadline == nil)
    }
}
