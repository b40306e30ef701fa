import Foundation
import Testing

@testable import Gearman

@Suite("GearmanCredentials", .timeLimit(.minutes(5)))
struct GearmanCredentialsTests {
    // MARK: Validation

    @Test func validCredentialsKeepBothParts() throws {
        let credentials = try GearmanCredentials(principal: "acme-web", secret: "s3cret:with/punctuation=")
        #expect(credentials.principal == "acme-web")
        #expect(credentials.secret == "s3cret:with/punctuation=")
        #expect(credentials.optionToken == "auth:acme-web:s3cret:with/punctuation=")
        #expect(credentials.acceptedOption == "auth:acme-web")
        #expect(credentials.adminLine == "auth acme-web s3cret:with/punctuation=")
    }

    @Test(arguments: ["", "acme:web", "acme web", "acme\tweb", "acme\nweb", "acme\u{0}web", "acme\u{7F}", "acme\u{A0}web"])
    func badPrincipalsAreRefused(_ principal: String) {
        #expect(throws: GearmanError.self) { try GearmanCredentials(principal: principal, secret: "s3cret") }
        do {
            _ = try GearmanCredentials(principal: principal, secret: "s3cret")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("principal"))
        }
    }

    @Test(arguments: ["", "qx7 two", "qx7\there", "qx7\nbreak", "qx7\rhere", "qx7\u{0}here", "qx7\u{7F}", "qx7\u{A0}here"])
    func badSecretsAreRefusedWithoutQuotingThem(_ secret: String) {
        do {
            _ = try GearmanCredentials(principal: "acme", secret: secret)
            Issue.record("accepted a secret it cannot send")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("secret"))
            if !secret.isEmpty {
                #expect(!error.description.contains(secret))
                #expect(!error.description.contains(secret.prefix(3)), "no part of the secret is quoted")
            }
        }
    }

    // MARK: Redaction

    @Test func descriptionsNeverShowTheSecret() throws {
        let credentials = try GearmanCredentials(principal: "acme-web", secret: "hunter2")
        #expect(credentials.description == #"GearmanCredentials(principal: "acme-web", secret: <redacted>)"#)
        #expect(credentials.debugDescription == credentials.description)
        #expect("\(credentials)" == credentials.description)
        #expect(String(reflecting: credentials) == credentials.description)
        var dumped = ""
        dump(credentials, to: &dumped)
        #expect(dumped.contains("acme-web"))
        #expect(!dumped.contains("hunter2"))
        // Nested in the options, printing them shows no secret either.
        let options = GearmanConnectionOptions(credentials: credentials)
        #expect(!"\(options)".contains("hunter2"))
        #expect(!String(reflecting: options).contains("hunter2"))
        var dumpedOptions = ""
        dump(options, to: &dumpedOptions)
        #expect(!dumpedOptions.contains("hunter2"))
    }

    @Test func redactingRemovesEveryOccurrence() throws {
        let credentials = try GearmanCredentials(principal: "acme", secret: "hunter2")
        #expect(credentials.redacting("bad token auth:acme:hunter2 (hunter2)") == "bad token auth:acme:<redacted> (<redacted>)")
    }

    @Test func optionsDefaultToNoCredentials() {
        #expect(GearmanConnectionOptions().credentials == nil)
    }

    // MARK: Secret files

    @Test func aSecretFileGivesItsFirstLineWithoutTrailingWhitespace() throws {
        try withTemporaryFile(contents: "s3cret \t\r\nsecond line\n") { (path: String) throws in
            #expect(try GearmanCredentials.readSecret(fromFile: path) == "s3cret")
        }
        try withTemporaryFile(contents: "no-newline") { (path: String) throws in
            #expect(try GearmanCredentials.readSecret(fromFile: path) == "no-newline")
        }
    }

    @Test func secretFileContentsParsing() {
        #expect(GearmanCredentials.secret(fromFileContents: Array("abc\n".utf8)) == "abc")
        #expect(GearmanCredentials.secret(fromFileContents: Array("abc\r\n".utf8)) == "abc")
        #expect(GearmanCredentials.secret(fromFileContents: Array(" abc".utf8)) == " abc", "leading space kept (and refused later)")
        #expect(GearmanCredentials.secret(fromFileContents: Array("\nabc\n".utf8)) == nil, "an empty first line is no secret")
        #expect(GearmanCredentials.secret(fromFileContents: Array("  \n".utf8)) == nil)
        #expect(GearmanCredentials.secret(fromFileContents: []) == nil)
    }

    @Test func anEmptySecretFileIsAClearError() throws {
        try withTemporaryFile(contents: "\n") { (path: String) throws in
            do throws(GearmanError) {
                _ = try GearmanCredentials.readSecret(fromFile: path)
                Issue.record("read a secret from an empty file")
            } catch {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains("empty"))
                #expect(error.message.contains(path))
            }
        }
    }

    @Test func anUnreadableSecretFileIsAClearError() {
        let path = "/nonexistent/gearlock-secret-\(UInt32.random(in: 0...UInt32.max))"
        do throws(GearmanError) {
            _ = try GearmanCredentials.readSecret(fromFile: path)
            Issue.record("read a secret from a missing file")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("cannot read the secret file \(path)"))
            #expect(error.message.contains("No such file"))
        }
    }

    @Test func aSecretFileWithSpacesInsideIsRefusedWithoutQuotingIt() throws {
        try withTemporaryFile(contents: "two words\n") { (path: String) throws in
            do throws(GearmanError) {
                _ = try GearmanCredentials.readSecret(fromFile: path)
                Issue.record("accepted a secret with a space")
            } catch {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains(path))
                #expect(!error.message.contains("two words"))
            }
        }
    }

    // MARK: Command-line resolution

    @Test func noPrincipalAndNoSecretIsNoCredentials() throws {
        #expect(try GearmanCredentials.resolve(principal: nil, secret: nil, secretFile: nil, environment: [:]) == nil)
        #expect(
            try GearmanCredentials.resolve(
                principal: nil, secret: nil, secretFile: nil,
                environment: ["GEARLOCK_PRINCIPAL": "", "GEARLOCK_SECRET": ""]) == nil,
            "empty variables count as unset")
    }

    @Test func theSecretComesFromTheOptionThenTheFileThenTheEnvironment() throws {
        let environment = ["GEARLOCK_PRINCIPAL": "from-env", "GEARLOCK_SECRET": "env-secret"]
        try withTemporaryFile(contents: "file-secret\n") { (path: String) throws in
            let all = try GearmanCredentials.resolve(
                principal: "acme", secret: "option-secret", secretFile: path, environment: environment)
            #expect(all == (try GearmanCredentials(principal: "acme", secret: "option-secret")))
            let fileAndEnvironment = try GearmanCredentials.resolve(
                principal: "acme", secret: nil, secretFile: path, environment: environment)
            #expect(fileAndEnvironment?.secret == "file-secret")
        }
        let environmentOnly = try GearmanCredentials.resolve(principal: nil, secret: nil, secretFile: nil, environment: environment)
        #expect(environmentOnly == (try GearmanCredentials(principal: "from-env", secret: "env-secret")))
    }

    @Test func aSecretFileThatCannotBeReadIsAnErrorEvenWithTheEnvironmentSet() {
        #expect(throws: GearmanError.self) {
            try GearmanCredentials.resolve(
                principal: "acme", secret: nil, secretFile: "/nonexistent/secret", environment: ["GEARLOCK_SECRET": "env"])
        }
    }

    @Test func onePartWithoutTheOtherIsAnError() {
        do {
            _ = try GearmanCredentials.resolve(principal: "acme", secret: nil, secretFile: nil, environment: [:])
            Issue.record("a principal without a secret was accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("no secret"))
        }
        do {
            _ = try GearmanCredentials.resolve(principal: nil, secret: nil, secretFile: nil, environment: ["GEARLOCK_SECRET": "hunter2"])
            Issue.record("a secret without a principal was accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("without a principal"))
            #expect(!error.message.contains("hunter2"))
        }
    }

    @Test func resolvedPartsAreValidated() {
        do {
            _ = try GearmanCredentials.resolve(principal: "acme", secret: "has space", secretFile: nil, environment: [:])
            Issue.record("an unsendable secret was accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(!error.message.contains("has space"))
        }
    }
}

/// Runs `body` with the path of a new file holding `contents`, removed afterwards.
func withTemporaryFile(contents: String, _ body: (String) throws -> Void) throws {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("gearman-credentials-\(UUID().uuidString)")
    try Data(contents.utf8).write(to: url)
    defer { try? FileManager.default.removeItem(at: url) }
    try body(url.path)
}
