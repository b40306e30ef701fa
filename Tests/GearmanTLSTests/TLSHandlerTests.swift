import GearlockTestSupport
import Foundation
import GearmanTLS
import NIOCore
import NIOEmbedded
import Testing

/// The TLS handler between two in-memory channels: a client and a server `EmbeddedChannel`, with
/// the ciphertext each one writes fed to the other until both are quiet. No sockets, no clock
/// (the handshake deadline is driven with `advanceTime`).
///
/// The tests are synchronous on purpose: an `EmbeddedEventLoop` may only be used from the thread
/// that made it.
@Suite("TLSHandler over in-memory channels", .timeLimit(.minutes(5)))
struct TLSHandlerTests {
    // MARK: Handshake

    @Test("TLS 1.3 with client certificates: both sides learn who the other is")
    func tls13MutualHandshake() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .require),
            client: pki.clientContext(certificate: "alice"))
        try pair.pump()

        let seenByServer = try #require(pair.serverPeer.identity, "server: \(pair.serverPeer)")
        #expect(seenByServer.protocolVersion == "TLSv1.3")
        #expect(seenByServer.commonNames == ["alice"])
        #expect(seenByServer.isVerified)
        #expect(seenByServer.hasCertificate)
        #expect(seenByServer.fingerprintSHA256?.count == 64)
        #expect((seenByServer.notAfter ?? 0) > Int64(Date.now.timeIntervalSince1970))

        let seenByClient = try #require(pair.clientPeer.identity, "client: \(pair.clientPeer)")
        #expect(seenByClient.protocolVersion == "TLSv1.3")
        #expect(seenByClient.commonNames == ["localhost"])
        #expect(seenByClient.dnsNames == ["localhost"])
        #expect(seenByClient.ipAddresses == ["127.0.0.1"])
        #expect(seenByClient.isVerified)
        #expect(seenByClient.cipher == seenByServer.cipher && !seenByClient.cipher.isEmpty)

        #expect(pair.serverPeer.errors.isEmpty && pair.clientPeer.errors.isEmpty)
        #expect(pair.server.isActive && pair.client.isActive)
        pair.finish()
    }

    @Test("a client capped at TLS 1.2 completes a mutual handshake at TLS 1.2")
    func tls12MutualHandshake() throws {
        let pki = try TestPKI.shared()
        var client = pki.clientConfiguration(certificate: "alice")
        client.maximumVersion = .tls12
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .require), client: TLSContext(configuration: client))
        try pair.pump()
        let seenByServer = try #require(pair.serverPeer.identity, "server: \(pair.serverPeer)")
        #expect(seenByServer.protocolVersion == "TLSv1.2")
        #expect(seenByServer.commonNames == ["alice"])
        #expect(seenByServer.isVerified)
        #expect(seenByServer.cipher.hasPrefix("ECDHE-"))
        #expect(pair.clientPeer.identity?.protocolVersion == "TLSv1.2")
        #expect(pair.serverPeer.errors.isEmpty && pair.clientPeer.errors.isEmpty)
        pair.finish()
    }

    @Test("without client authentication the server sees no certificate")
    func noClientAuthentication() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .none), client: pki.clientContext(certificate: nil))
        try pair.pump()
        let seenByServer = try #require(pair.serverPeer.identity, "server: \(pair.serverPeer)")
        #expect(!seenByServer.hasCertificate && !seenByServer.isVerified && seenByServer.commonNames.isEmpty)
        #expect(pair.clientPeer.identity?.isVerified == true)
        pair.finish()
    }

    @Test("optional client authentication: with a certificate it is verified, without one the client is accepted")
    func optionalClientAuthentication() throws {
        let pki = try TestPKI.shared()
        let server = try pki.serverContext(clientAuthentication: .optional)

        let withCertificate = try TLSPair(server: server, client: pki.clientContext(certificate: "bob"))
        try withCertificate.pump()
        #expect(withCertificate.serverPeer.identity?.commonNames == ["bob"])
        #expect(withCertificate.serverPeer.identity?.isVerified == true)
        withCertificate.finish()

        let without = try TLSPair(server: server, client: pki.clientContext(certificate: nil))
        try without.pump()
        try without.exchange("anonymous", from: .client)
        #expect(without.serverPeer.identity?.hasCertificate == false)
        #expect(without.serverPeer.errors.isEmpty && without.clientPeer.errors.isEmpty)
        without.finish()
    }

    // MARK: Data

    @Test("the identity event comes before the first application byte, even when the data rides on the last flight")
    func identityBeforeData() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .require),
            client: pki.clientContext(certificate: "alice"), activate: false)
        pair.activate()
        // Written before the handshake: sent together with the client's Finished.
        pair.client.writeAndFlush(ByteBuffer(string: "first words"), promise: nil)
        try pair.pump()
        guard case .identity(let identity)? = pair.serverPeer.log.first else {
            Issue.record("the server's first inbound item is not the identity: \(pair.serverPeer.log)")
            return
        }
        #expect(identity.commonNames == ["alice"])
        #expect(pair.serverPeer.receivedString == "first words")
        #expect(pair.serverPeer.log.count >= 2)
        pair.finish()
    }

    @Test("writes made before the handshake are held, then delivered after it, in order, completing their promises")
    func writesBeforeHandshakeAreHeld() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .none), client: pki.clientContext(certificate: nil))
        let first = Completion(pair.client.write(ByteBuffer(string: "secret-one ")))
        let second = Completion(pair.client.writeAndFlush(ByteBuffer(string: "secret-two")))
        // The server writes before it has even seen the ClientHello.
        let fromServer = Completion(pair.server.writeAndFlush(ByteBuffer(string: "early server data")))

        // Only the ClientHello left the client, and nothing of the plaintext.
        var clientHello = ByteBuffer()
        while var chunk = try pair.client.readOutbound(as: ByteBuffer.self) { clientHello.writeBuffer(&chunk) }
        #expect(clientHello.getInteger(at: clientHello.readerIndex, as: UInt8.self) == 0x16, "a handshake record")
        #expect(!String(decoding: clientHello.readableBytesView, as: UTF8.self).contains("secret"))
        #expect(try pair.server.readOutbound(as: ByteBuffer.self) == nil, "the server sends nothing before the ClientHello")
        #expect(!first.isDone && !second.isDone && !fromServer.isDone)

        try pair.server.writeInbound(clientHello)
        try pair.pump()
        #expect(pair.serverPeer.receivedString == "secret-one secret-two")
        #expect(pair.clientPeer.receivedString == "early server data")
        #expect(first.succeeded && second.succeeded && fromServer.succeeded)
        pair.finish()
    }

    @Test("data flows both ways, including 1 MiB messages")
    func dataBothWays() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .require),
            client: pki.clientContext(certificate: "alice"))
        try pair.pump()
        try pair.exchange("hello server", from: .client)
        try pair.exchange("hello client", from: .server)

        let big = patternBytes(count: 1 << 20, seed: 7)
        let toServer = Completion(pair.client.writeAndFlush(big))
        try pair.pump()
        #expect(pair.serverPeer.received.dropping(12) == big, "hello server, then 1 MiB")
        #expect(toServer.succeeded)

        let bigReply = patternBytes(count: 1 << 20, seed: 8)
        pair.server.writeAndFlush(bigReply, promise: nil)
        try pair.pump()
        #expect(pair.clientPeer.received.dropping(12) == bigReply, "hello client, then 1 MiB")
        #expect(pair.serverPeer.errors.isEmpty && pair.clientPeer.errors.isEmpty)
        pair.finish()
    }

    @Test("many small writes flushed once arrive complete and in order")
    func manySmallWrites() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .none), client: pki.clientContext(certificate: nil))
        try pair.pump()
        var expected = ""
        var promises: [Completion] = []
        for index in 0..<500 {
            let text = "\(index),"
            expected += text
            promises.append(Completion(pair.client.write(ByteBuffer(string: text))))
        }
        #expect(try pair.client.readOutbound(as: ByteBuffer.self) == nil, "nothing goes out before the flush")
        pair.client.flush()
        try pair.pump()
        #expect(pair.serverPeer.receivedString == expected)
        #expect(promises.allSatisfy { $0.succeeded })
        pair.finish()
    }

    @Test("small writes flushed together share TLS records; a large write is not held back")
    func smallWritesShareRecords() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .none), client: pki.clientContext(certificate: nil))
        try pair.pump()
        var expected = ByteBuffer()
        for index in 0..<100 {
            let text = ByteBuffer(string: "packet \(index);")
            expected.writeImmutableBuffer(text)
            pair.client.write(text, promise: nil)
        }
        let large = patternBytes(count: 3 * TLSHandler.coalescingLimit, seed: 3)
        expected.writeImmutableBuffer(large)
        pair.client.write(large, promise: nil)
        pair.client.flush()
        let ciphertext = try pair.clientCiphertext()
        // TLS records: 5-byte headers (type 23 = application data) and their lengths.
        var records = 0
        var cursor = ciphertext
        while let header = cursor.readBytes(length: 5) {
            #expect(header[0] == 23)
            records += 1
            cursor.moveReaderIndex(forwardBy: Int(header[3]) << 8 | Int(header[4]))
        }
        // One record for the 100 small writes and one for the large write (one record each: 101).
        #expect(records == 2, "\(records) records")
        try pair.server.writeInbound(ciphertext)
        try pair.pump()
        #expect(pair.serverPeer.received == expected)
        pair.finish()
    }

    @Test("records that arrive in one read reach the next handler as one buffer, in order")
    func recordsOfOneReadArriveTogether() throws {
        let pair = try TLSPair.handshaken()
        let texts = ["first record;", "second record;", String(repeating: "third, longer record;", count: 100)]
        var ciphertext = ByteBuffer()
        for text in texts {
            pair.client.writeAndFlush(ByteBuffer(string: text), promise: nil)
            var written = try pair.clientCiphertext()
            ciphertext.writeBuffer(&written)
        }
        let eventsBefore = pair.serverPeer.log.count
        try pair.server.writeInbound(ciphertext)
        #expect(pair.serverPeer.receivedString == texts.joined())
        #expect(pair.serverPeer.log.count == eventsBefore + 1, "one channelRead: \(pair.serverPeer.log)")
        #expect(pair.serverPeer.errors.isEmpty)
        pair.finish()
    }

    @Test("records split across many small reads are delivered whole, nothing before a record completes")
    func recordsSplitAcrossReads() throws {
        let pair = try TLSPair.handshaken()
        let text = String(repeating: "split;", count: 50)
        pair.client.writeAndFlush(ByteBuffer(string: text), promise: nil)
        var ciphertext = try pair.clientCiphertext()
        let recordLength = ciphertext.readableBytes
        while ciphertext.readableBytes > 0 {
            let piece = ciphertext.readSlice(length: min(7, ciphertext.readableBytes))!
            #expect(pair.serverPeer.received.readableBytes == 0, "no plaintext before the record's last byte")
            try pair.server.writeInbound(piece)
        }
        #expect(pair.serverPeer.receivedString == text, "one \(recordLength)-byte record fed 7 bytes at a time")
        #expect(pair.serverPeer.errors.isEmpty)
        pair.finish()
    }

    @Test("data and the close_notify after it in one read: the data is delivered, then the close is clean")
    func dataThenCloseNotifyInOneRead() throws {
        let pair = try TLSPair.handshaken()
        pair.client.writeAndFlush(ByteBuffer(string: "last words"), promise: nil)
        pair.client.close(promise: nil)
        try pair.server.writeInbound(try pair.clientCiphertext())
        #expect(pair.serverPeer.receivedString == "last words")
        #expect(!pair.server.isActive, "the server closed on the close_notify")
        #expect(pair.serverPeer.errors.isEmpty, "a clean close: \(pair.serverPeer.errors)")
        pair.finish()
    }

    // MARK: Close

    @Test("close from the client: close_notify reaches the server, which closes cleanly too")
    func closeNotifyFromClient() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .require),
            client: pki.clientContext(certificate: "alice"))
        try pair.pump()
        try pair.exchange("bye soon", from: .client)
        try pair.client.close().wait()
        try pair.pump()
        #expect(pair.clientPeer.isInactive && pair.serverPeer.isInactive)
        #expect(!pair.server.isActive, "the server closed on the client's close_notify")
        #expect(pair.serverPeer.errors.isEmpty, "a clean close: \(pair.serverPeer.errors)")
        #expect(pair.clientPeer.errors.isEmpty, "\(pair.clientPeer.errors)")
        pair.finish()
    }

    @Test("close from the server: close_notify reaches the client, which closes cleanly too")
    func closeNotifyFromServer() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .none), client: pki.clientContext(certificate: nil))
        try pair.pump()
        try pair.exchange("last words", from: .server)
        try pair.server.close().wait()
        try pair.pump()
        #expect(pair.clientPeer.isInactive && pair.serverPeer.isInactive)
        #expect(!pair.client.isActive, "the client closed on the server's close_notify")
        #expect(pair.clientPeer.errors.isEmpty, "a clean close: \(pair.clientPeer.errors)")
        #expect(pair.serverPeer.errors.isEmpty, "\(pair.serverPeer.errors)")
        pair.finish()
    }

    @Test("EOF without close_notify after the handshake is an uncleanShutdown error")
    func eofWithoutCloseNotify() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .require),
            client: pki.clientContext(certificate: "alice"))
        try pair.pump()
        try pair.exchange("half a mess", from: .client)
        // The transport below the server's handler goes away, as when the peer's TCP connection
        // ends without a TLS close.
        pair.server.pipeline.fireChannelInactive()
        #expect(pair.serverPeer.tlsErrorCodes == [.uncleanShutdown], "\(pair.serverPeer)")
        #expect(pair.serverPeer.isInactive)
        pair.finish()
    }

    @Test("EOF during the handshake is not reported as uncleanShutdown")
    func eofDuringHandshake() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .none), client: pki.clientContext(certificate: nil))
        pair.server.pipeline.fireChannelInactive()
        #expect(!pair.serverPeer.tlsErrorCodes.contains(.uncleanShutdown), "\(pair.serverPeer)")
        #expect(pair.serverPeer.isInactive && pair.serverPeer.identity == nil)
        pair.finish()
    }

    @Test("a write after close fails its promise")
    func writeAfterClose() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .none), client: pki.clientContext(certificate: nil))
        try pair.pump()
        try pair.client.close().wait()
        let late = pair.client.writeAndFlush(ByteBuffer(string: "too late"))
        #expect(throws: (any Error).self) { try late.wait() }
        pair.finish()
    }

    // MARK: The client verifies the server

    @Test("the client refuses a server certificate for another name")
    func clientRefusesWrongServerName() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .none),
            client: pki.clientContext(certificate: nil, serverName: "other.example"))
        try pair.pump()
        #expect(pair.clientPeer.identity == nil, "no handshake event for a refused server")
        #expect(pair.clientPeer.tlsErrorCodes == [.handshakeFailed], "\(pair.clientPeer)")
        #expect(pair.clientPeer.errorText.contains("hostname mismatch"), "\(pair.clientPeer.errorText)")
        #expect(pair.serverPeer.identity == nil && pair.serverPeer.tlsErrorCodes == [.handshakeFailed])
        #expect(!pair.client.isActive && !pair.server.isActive)
        pair.finish()
    }

    @Test("a server name given to the handler overrides the configuration's, and an IP address is checked as such")
    func handlerServerNameOverride() throws {
        let pki = try TestPKI.shared()
        let server = try pki.serverContext(clientAuthentication: .none)
        let client = try pki.clientContext(certificate: nil, serverName: "other.example")

        let byIP = try TLSPair(server: server, client: client, serverName: "127.0.0.1")
        try byIP.pump()
        #expect(byIP.clientPeer.identity?.isVerified == true, "\(byIP.clientPeer)")
        byIP.finish()

        let wrongIP = try TLSPair(server: server, client: client, serverName: "127.0.0.2")
        try wrongIP.pump()
        #expect(wrongIP.clientPeer.identity == nil && wrongIP.clientPeer.tlsErrorCodes == [.handshakeFailed])
        #expect(wrongIP.clientPeer.errorText.contains("IP address mismatch"), "\(wrongIP.clientPeer.errorText)")
        wrongIP.finish()
    }

    @Test("the client refuses a server whose certificate comes from a CA it does not trust")
    func clientRefusesForeignCA() throws {
        let pki = try TestPKI.shared()
        let client = TLSConfiguration.makeClientConfiguration(
            trustRootsPath: pki.certificate("foreign-ca"), serverName: "localhost")
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .none), client: TLSContext(configuration: client))
        try pair.pump()
        #expect(pair.clientPeer.identity == nil)
        #expect(pair.clientPeer.tlsErrorCodes == [.handshakeFailed], "\(pair.clientPeer)")
        #expect(pair.clientPeer.errorText.contains("certificate verify failed"), "\(pair.clientPeer.errorText)")
        #expect(pair.serverPeer.tlsErrorCodes == [.handshakeFailed], "the server got the alert: \(pair.serverPeer)")
        pair.finish()
    }

    // MARK: The server verifies the client

    @Test("under require, a client without a certificate is refused")
    func requireRefusesClientWithoutCertificate() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .require), client: pki.clientContext(certificate: nil))
        try pair.pump()
        #expect(pair.serverPeer.identity == nil, "the server never reports a refused client as identified")
        #expect(pair.serverPeer.tlsErrorCodes == [.handshakeFailed], "\(pair.serverPeer)")
        #expect(pair.serverPeer.errorText.contains("peer did not return a certificate"), "\(pair.serverPeer.errorText)")
        // TLS 1.3: the client may finish its side first, then learns of the refusal from the alert.
        #expect(pair.clientPeer.errors.count == 1, "\(pair.clientPeer)")
        #expect(pair.clientPeer.errorText.contains("certificate required"), "\(pair.clientPeer.errorText)")
        #expect(!pair.server.isActive && !pair.client.isActive)
        pair.finish()
    }

    @Test("under require, a client certificate from a foreign CA is refused, even with a familiar name")
    func requireRefusesForeignClient() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .require),
            client: pki.clientContext(certificate: "mallory"))
        try pair.pump()
        #expect(pair.serverPeer.identity == nil)
        #expect(pair.serverPeer.tlsErrorCodes == [.handshakeFailed], "\(pair.serverPeer)")
        #expect(pair.serverPeer.errorText.contains("certificate verify failed"), "\(pair.serverPeer.errorText)")
        #expect(pair.clientPeer.errorText.contains("unknown ca"), "\(pair.clientPeer.errorText)")
        #expect(!pair.server.isActive && !pair.client.isActive)
        pair.finish()
    }

    @Test("under optional, a client certificate that fails verification is still refused")
    func optionalRefusesForeignClient() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .optional),
            client: pki.clientContext(certificate: "mallory"))
        try pair.pump()
        #expect(pair.serverPeer.identity == nil, "\(pair.serverPeer)")
        #expect(pair.serverPeer.tlsErrorCodes == [.handshakeFailed])
        pair.finish()
    }

    @Test("a revoked client certificate is refused when the CRL is loaded, and accepted without it")
    func revokedClientRefused() throws {
        let pki = try TestPKI.shared()
        let withCRL = try TLSPair(
            server: pki.serverContext(clientAuthentication: .require, crl: true),
            client: pki.clientContext(certificate: "revoked"))
        try withCRL.pump()
        #expect(withCRL.serverPeer.identity == nil)
        #expect(withCRL.serverPeer.tlsErrorCodes == [.handshakeFailed], "\(withCRL.serverPeer)")
        #expect(withCRL.serverPeer.errorText.contains("certificate revoked"), "\(withCRL.serverPeer.errorText)")
        #expect(withCRL.clientPeer.errorText.contains("certificate revoked"), "\(withCRL.clientPeer.errorText)")
        withCRL.finish()

        // The same server with the CRL still accepts a certificate that is not revoked.
        let good = try TLSPair(
            server: pki.serverContext(clientAuthentication: .require, crl: true),
            client: pki.clientContext(certificate: "alice"))
        try good.pump()
        #expect(good.serverPeer.identity?.commonNames == ["alice"], "\(good.serverPeer)")
        good.finish()

        // Proof that the CRL is what refuses it.
        let withoutCRL = try TLSPair(
            server: pki.serverContext(clientAuthentication: .require),
            client: pki.clientContext(certificate: "revoked"))
        try withoutCRL.pump()
        #expect(withoutCRL.serverPeer.identity?.commonNames == ["revoked"], "\(withoutCRL.serverPeer)")
        withoutCRL.finish()
    }

    @Test("an expired client certificate is refused")
    func expiredClientRefused() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .require),
            client: pki.clientContext(certificate: "expired"))
        try pair.pump()
        #expect(pair.serverPeer.identity == nil)
        #expect(pair.serverPeer.tlsErrorCodes == [.handshakeFailed], "\(pair.serverPeer)")
        #expect(pair.serverPeer.errorText.contains("certificate has expired"), "\(pair.serverPeer.errorText)")
        #expect(pair.clientPeer.errorText.contains("certificate expired"), "\(pair.clientPeer.errorText)")
        pair.finish()
    }

    // MARK: Deadlines and garbage

    @Test("a peer that never sends a ClientHello is dropped at the handshake deadline, not before")
    func handshakeTimeout() throws {
        let pki = try TestPKI.shared()
        var configuration = pki.serverConfiguration(clientAuthentication: .require)
        configuration.handshakeTimeout = .seconds(2)
        let pair = try TLSPair(server: TLSContext(configuration: configuration), client: pki.clientContext(certificate: nil))
        // The client's ClientHello is never delivered.
        pair.server.embeddedEventLoop.advanceTime(by: .milliseconds(1999))
        #expect(pair.server.isActive && pair.serverPeer.errors.isEmpty)
        pair.server.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(pair.serverPeer.tlsErrorCodes == [.handshakeTimeout], "\(pair.serverPeer)")
        #expect(!pair.server.isActive && pair.serverPeer.isInactive)
        pair.finish()
    }

    @Test("a completed handshake cancels the deadline")
    func handshakeDeadlineCancelled() throws {
        let pki = try TestPKI.shared()
        var configuration = pki.serverConfiguration(clientAuthentication: .none)
        configuration.handshakeTimeout = .seconds(1)
        let pair = try TLSPair(server: TLSContext(configuration: configuration), client: pki.clientContext(certificate: nil))
        try pair.pump()
        pair.server.embeddedEventLoop.advanceTime(by: .seconds(5))
        pair.client.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(pair.server.isActive && pair.client.isActive)
        #expect(pair.serverPeer.errors.isEmpty && pair.clientPeer.errors.isEmpty)
        try pair.exchange("still here", from: .client)
        pair.finish()
    }

    @Test("a client whose server never answers gives up at its own deadline")
    func clientHandshakeTimeout() throws {
        let pki = try TestPKI.shared()
        var configuration = pki.clientConfiguration()
        configuration.handshakeTimeout = .milliseconds(500)
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .none), client: TLSContext(configuration: configuration))
        pair.client.embeddedEventLoop.advanceTime(by: .milliseconds(500))
        #expect(pair.clientPeer.tlsErrorCodes == [.handshakeTimeout], "\(pair.clientPeer)")
        #expect(!pair.client.isActive)
        pair.finish()
    }

    @Test("plaintext sent to a TLS server fails the handshake and closes that channel")
    func plaintextToServer() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .require), client: pki.clientContext(certificate: nil))
        try pair.server.writeInbound(ByteBuffer(string: "version\n"))
        #expect(pair.serverPeer.tlsErrorCodes == [.handshakeFailed], "\(pair.serverPeer)")
        #expect(pair.serverPeer.identity == nil && pair.serverPeer.received.readableBytes == 0)
        #expect(!pair.server.isActive)
        pair.finish()
    }

    @Test("a Gearman binary packet sent to a TLS server fails the handshake too")
    func binaryPacketToServer() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .none), client: pki.clientContext(certificate: nil))
        // \0REQ ECHO_REQ "hi"
        try pair.server.writeInbound(ByteBuffer(bytes: [0, 0x52, 0x45, 0x51, 0, 0, 0, 16, 0, 0, 0, 2, 0x68, 0x69]))
        #expect(pair.serverPeer.tlsErrorCodes == [.handshakeFailed], "\(pair.serverPeer)")
        #expect(!pair.server.isActive)
        pair.finish()
    }

    @Test("garbage after the handshake is an I/O error on that channel")
    func garbageAfterHandshake() throws {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .none), client: pki.clientContext(certificate: nil))
        try pair.pump()
        // A TLS application-data record header with a body that decrypts to nothing sensible.
        var record = ByteBuffer(bytes: [0x17, 0x03, 0x03, 0x00, 0x20])
        record.writeBytes([UInt8](repeating: 0xAB, count: 32))
        try pair.server.writeInbound(record)
        #expect(pair.serverPeer.tlsErrorCodes == [.ioFailed], "\(pair.serverPeer)")
        #expect(!pair.server.isActive)
        pair.finish()
    }

    // MARK: Configuration errors

    @Test("bad files fail TLSContext with invalidConfiguration naming the file")
    func badFilesAreInvalidConfiguration() throws {
        let pki = try TestPKI.shared()
        let missing = pki.directory + "/missing.pem"
        let cases: [(TLSConfiguration, String)] = [
            (.makeServerConfiguration(certificateChainPath: missing, privateKeyPath: pki.key("server")), missing),
            (.makeServerConfiguration(certificateChainPath: pki.certificate("server"), privateKeyPath: pki.key("alice")), pki.key("alice")),
            (.makeServerConfiguration(
                certificateChainPath: pki.certificate("server"), privateKeyPath: pki.key("server"),
                clientAuthentication: .require, trustRootsPath: missing), missing),
            (.makeServerConfiguration(
                certificateChainPath: pki.certificate("server"), privateKeyPath: pki.key("server"),
                clientAuthentication: .require), "CA bundle"),
            (.makeServerConfiguration(
                certificateChainPath: pki.certificate("server"), privateKeyPath: pki.key("server"),
                clientAuthentication: .require, trustRootsPath: pki.certificate("ca"), crlPath: pki.certificate("alice")),
             pki.certificate("alice")),
        ]
        for (configuration, expected) in cases {
            do {
                _ = try TLSContext(configuration: configuration)
                Issue.record("accepted a bad configuration, expected an error mentioning \(expected)")
            } catch {
                #expect(error.code == .invalidConfiguration)
                #expect(error.description.contains(expected), "\(error)")
            }
        }
    }
}

// MARK: - Test support

/// Records what reaches the end of a pipeline, and swallows errors so the `EmbeddedChannel` does
/// not rethrow them from `writeInbound`.
final class PeerRecorder: ChannelInboundHandler, CustomStringConvertible {
    typealias InboundIn = ByteBuffer

    enum Entry: CustomStringConvertible {
        case identity(TLSPeerIdentity)
        case data(Int)

        var description: String {
            switch self {
            case .identity(let identity): "identity(\(identity.commonNames), \(identity.protocolVersion))"
            case .data(let count): "data(\(count) bytes)"
            }
        }
    }

    private(set) var log: [Entry] = []
    private(set) var received = ByteBuffer()
    private(set) var errors: [any Error] = []
    private(set) var isInactive = false

    var identity: TLSPeerIdentity? {
        for entry in log { if case .identity(let identity) = entry { return identity } }
        return nil
    }

    var receivedString: String { String(buffer: received) }
    var tlsErrorCodes: [TLSError.Code] { errors.compactMap { ($0 as? TLSError)?.code } }
    var errorText: String { errors.map { "\($0)" }.joined(separator: " | ") }

    var description: String {
        "log \(log), \(received.readableBytes) bytes, errors [\(errorText)], \(isInactive ? "inactive" : "active")"
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        log.append(.data(bytes.readableBytes))
        received.writeBuffer(&bytes)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let identity) = event as? TLSEvent {
            log.append(.identity(identity))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isInactive = true
    }
}

/// A client and a server channel, each with a `TLSHandler` and a `PeerRecorder`.
struct TLSPair {
    enum Side { case client, server }

    let client: EmbeddedChannel
    let server: EmbeddedChannel
    let clientPeer = PeerRecorder()
    let serverPeer = PeerRecorder()

    /// - Parameter activate: make both channels active at once (the client then has its ClientHello ready).
    init(server: TLSContext, client: TLSContext, serverName: String? = nil, activate: Bool = true) throws {
        self.server = EmbeddedChannel(handlers: [TLSHandler(context: server), serverPeer])
        self.client = EmbeddedChannel(handlers: [TLSHandler(context: client, serverName: serverName), clientPeer])
        if activate { self.activate() }
    }

    func activate() {
        let address = try! SocketAddress(ipAddress: "127.0.0.1", port: 4730)
        server.connect(to: address, promise: nil)
        client.connect(to: address, promise: nil)
    }

    /// Moves ciphertext between the two channels until neither has anything more to send. Bytes
    /// for a channel that has closed are dropped, as a closed socket would.
    func pump(sourceLocation: SourceLocation = #_sourceLocation) throws {
        for _ in 0..<10_000 {
            let moved = try move(from: client, to: server) + move(from: server, to: client)
            if moved == 0 { return }
        }
        Issue.record("the two sides never went quiet", sourceLocation: sourceLocation)
    }

    private func move(from source: EmbeddedChannel, to destination: EmbeddedChannel) throws -> Int {
        var count = 0
        while let bytes = try source.readOutbound(as: ByteBuffer.self) {
            count += 1
            if destination.isActive { try destination.writeInbound(bytes) }
        }
        return count
    }

    /// A pair without client certificates, past its handshake.
    static func handshaken() throws -> TLSPair {
        let pki = try TestPKI.shared()
        let pair = try TLSPair(
            server: pki.serverContext(clientAuthentication: .none), client: pki.clientContext(certificate: nil))
        try pair.pump()
        return pair
    }

    /// Everything the client has written so far (and not yet moved), as one buffer.
    func clientCiphertext() throws -> ByteBuffer {
        var ciphertext = ByteBuffer()
        while var chunk = try client.readOutbound(as: ByteBuffer.self) { ciphertext.writeBuffer(&chunk) }
        return ciphertext
    }

    /// Sends `text` from one side and checks the other side received it.
    func exchange(_ text: String, from side: Side, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (sender, receiver) = side == .client ? (client, serverPeer) : (server, clientPeer)
        let before = receiver.received.readableBytes
        let written = Completion(sender.writeAndFlush(ByteBuffer(string: text)))
        try pump()
        var received = receiver.received
        received.moveReaderIndex(forwardBy: before)
        #expect(String(buffer: received) == text, sourceLocation: sourceLocation)
        #expect(written.succeeded, sourceLocation: sourceLocation)
    }

    func finish() {
        _ = try? client.finish(acceptAlreadyClosed: true)
        _ = try? server.finish(acceptAlreadyClosed: true)
    }
}

extension TestPKI {
    func serverConfiguration(clientAuthentication: TLSConfiguration.ClientAuthentication, crl: Bool = false)
        -> TLSConfiguration
    {
        TLSConfiguration.makeServerConfiguration(
            certificateChainPath: certificate("server"), privateKeyPath: key("server"),
            clientAuthentication: clientAuthentication,
            trustRootsPath: clientAuthentication == .none ? nil : certificate("ca"), crlPath: crl ? self.crl : nil)
    }

    func serverContext(clientAuthentication: TLSConfiguration.ClientAuthentication, crl: Bool = false) throws
        -> TLSContext
    {
        try TLSContext(configuration: serverConfiguration(clientAuthentication: clientAuthentication, crl: crl))
    }

    /// Trusts `ca`, checks the name `localhost`, and presents `certificate` (a PKI name) if given.
    func clientConfiguration(certificate name: String? = nil, serverName: String = "localhost") -> TLSConfiguration {
        TLSConfiguration.makeClientConfiguration(
            trustRootsPath: certificate("ca"), serverName: serverName, certificateChainPath: name.map(certificate),
            privateKeyPath: name.map(key))
    }

    func clientContext(certificate name: String?, serverName: String = "localhost") throws -> TLSContext {
        try TLSContext(configuration: clientConfiguration(certificate: name, serverName: serverName))
    }
}

/// Watches a future of an embedded channel (whose callbacks run at once, on the test's thread).
final class Completion {
    private(set) var result: Result<Void, any Error>?

    init(_ future: EventLoopFuture<Void>) {
        future.assumeIsolated().whenComplete { self.result = $0 }
    }

    var isDone: Bool { result != nil }
    var succeeded: Bool {
        if case .success = result { return true }
        return false
    }
}

extension ByteBuffer {
    func dropping(_ count: Int) -> ByteBuffer {
        var copy = self
        copy.moveReaderIndex(forwardBy: Swift.min(count, readableBytes))
        return copy
    }
}

/// `count` (a multiple of 8) pseudo-random bytes from `seed`, the same on every run.
func patternBytes(count: Int, seed: UInt64) -> ByteBuffer {
    precondition(count % 8 == 0)
    var state = seed
    var buffer = ByteBuffer()
    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
        let words = raw.bindMemory(to: UInt64.self)
        for index in 0..<(count / 8) {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            words[index] = state ^ (state >> 29)
        }
        return count
    }
    return buffer
}
