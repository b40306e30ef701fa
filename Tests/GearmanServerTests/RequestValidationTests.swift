import GearmanProtocol
import NIOCore
import Testing

@testable import GearmanServer

@Suite struct RequestValidationTests {
    @Test func echoReturnsTheSameBytes() {
        let h = Harness()
        let connection = h.connect()
        var payload = ByteBuffer(bytes: [0, 1, 2, 0xFF, 0])
        payload.writeString("tail")
        #expect(h.send(.echoRequest(payload: payload), from: connection).effects == [.send(.echoResponse(payload: payload), to: connection)])
        #expect(h.send(.echoRequest(payload: ByteBuffer()), from: connection).effects == [.send(.echoResponse(payload: ByteBuffer()), to: connection)])
    }

    @Test func responseMagicIsRejected() {
        let h = Harness()
        let connection = h.connect()
        let error = Res.error("INVALID_MAGIC", "Request magic expected")
        #expect(h.send(.echoRequest(payload: buf("x")), from: connection, magic: .response).effects == [.send(error, to: connection)])
        #expect(h.send(.echoResponse(payload: buf("x")), from: connection, magic: .response).effects == [.send(error, to: connection)])
        // Nothing happened: a submission with the wrong magic is not queued.
        #expect(h.send(Pkt.submitBG("f", "x"), from: connection, magic: .response).effects == [.send(error, to: connection)])
        #expect(h.adminReply("show jobs", from: connection) == ".\n")
    }

    @Test func unexpectedCommandsAreRejected() {
        let h = Harness()
        let connection = h.connect()
        let handle = buf("H:x:1")
        let unexpected: [GearmanPacket] = [
            .unused,
            .allYours,
            .submitJobSched(
                function: buf("f"), unique: buf("u"),
                schedule: CronFields(minute: buf("1"), hour: buf("2"), dayOfMonth: buf("3"), month: buf("4"), dayOfWeek: buf("5")),
                payload: buf("data")),
            .noop,
            .jobCreated(handle: handle),
            .noJob,
            .jobAssign(handle: handle, function: buf("f"), payload: buf("p")),
            .jobAssignUnique(handle: handle, function: buf("f"), unique: buf("u"), payload: buf("p")),
            .jobAssignAll(handle: handle, function: buf("f"), unique: buf("u"), reducer: buf("r"), payload: buf("p")),
            .echoResponse(payload: buf("x")),
            .error(code: "X", text: "y"),
            .statusResponse(handle: handle, known: true, running: false, numerator: buf("0"), denominator: buf("0")),
            .statusResponseUnique(
                unique: buf("u"), known: true, running: false, numerator: buf("0"), denominator: buf("0"), clients: buf("0")),
            .optionResponse(name: buf("exceptions")),
        ]
        let error = Res.error("INVALID_COMMAND", "Command not expected")
        for packet in unexpected {
            #expect(h.send(packet, from: connection).effects == [.send(error, to: connection)], "\(packet.type)")
        }
        #expect(h.adminReply("show jobs", from: connection) == ".\n")
        #expect(h.adminReply("status", from: connection) == ".\n")
    }

    @Test func setClientIDGetsNoReply() {
        let h = Harness()
        let connection = h.connect()
        #expect(h.send(.setClientID(id: buf("me")), from: connection).isEmpty)
    }

    @Test func closingAnUnknownConnectionIsHarmless() {
        let h = Harness()
        #expect(h.close(ConnectionID(4242)).isEmpty)
        let connection = h.connect()
        h.close(connection)
        #expect(h.close(connection).isEmpty)
    }

    @Test func reducerOver512BytesIsRejected() {
        let h = Harness()
        let client = h.connect()
        let outbox = h.send(Pkt.submitReduce("f", unique: "u", reducer: String(repeating: "r", count: 513), "x"), from: client)
        #expect(outbox.effects == [.send(Res.error("ARGUMENT_TOO_LARGE", "Reducer name too large"), to: client)])
        let ok = h.send(Pkt.submitReduce("f", unique: "v", reducer: String(repeating: "r", count: 512), "x"), from: client)
        #expect(ok.packets(to: client).count == 1)
    }
}
