internal import CGearlockOpenSSL
internal import COpenSSL

/// An OpenSSL context (`SSL_CTX`) built from a ``TLSConfiguration``: certificates, key, trust
/// roots, CRL and policy, shared by every connection that uses it.
///
/// > Warning: `init` reads files: build contexts off the event loop. A context is immutable once
/// built; to reload material, build a new one and hand it to new connections.
public final class TLSContext: @unchecked Sendable {
    public let configuration: TLSConfiguration
    let context: OpaquePointer

    public init(configuration: TLSConfiguration) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        let method = configuration.role == .server ? TLS_server_method() : TLS_client_method()
        guard let context = SSL_CTX_new(method) else {
            throw TLSError(
                code: .invalidConfiguration, message: "cannot create an OpenSSL context",
                openSSLErrors: OpenSSLErrorQueue.drain())
        }
        self.context = context
        self.configuration = configuration
        try configure()
    }

    deinit {
        SSL_CTX_free(context)
    }

    private func fail(_ message: String) -> TLSError {
        TLSError(code: .invalidConfiguration, message: message, openSSLErrors: OpenSSLErrorQueue.drain())
    }

    private func configure() throws(TLSError) {
        let configuration = self.configuration
        func protocolVersion(_ version: TLSConfiguration.Version) -> Int32 {
            switch version {
            case .tls12: TLS1_2_VERSION
            case .tls13: TLS1_3_VERSION
            }
        }
        guard CGearlockOpenSSL_SSL_CTX_set_min_proto_version(context, protocolVersion(configuration.minimumVersion)) == 1
        else {
            throw fail("cannot set the minimum TLS version")
        }
        if let maximum = configuration.maximumVersion {
            guard CGearlockOpenSSL_SSL_CTX_set_max_proto_version(context, protocolVersion(maximum)) == 1 else {
                throw fail("cannot set the maximum TLS version")
            }
        }
        _ = CGearlockOpenSSL_SSL_CTX_set_options(context, CGearlockOpenSSL_default_options())
        // Idle connections give their read/write buffers back: many idle workers cost little memory.
        _ = CGearlockOpenSSL_SSL_CTX_set_mode(context, Int(SSL_MODE_RELEASE_BUFFERS))
        guard SSL_CTX_set_cipher_list(context, configuration.cipherList) == 1 else {
            throw fail("invalid TLS 1.2 cipher list '\(configuration.cipherList)'")
        }
        guard SSL_CTX_set_ciphersuites(context, configuration.cipherSuites) == 1 else {
            throw fail("invalid TLS 1.3 cipher suites '\(configuration.cipherSuites)'")
        }
        guard CGearlockOpenSSL_SSL_CTX_set1_groups_list(context, configuration.groups) == 1 else {
            throw fail("invalid key-exchange groups '\(configuration.groups)'")
        }

        if let chain = configuration.certificateChainPath {
            guard SSL_CTX_use_certificate_chain_file(context, chain) == 1 else {
                throw fail("cannot load the certificate chain from \(chain)")
            }
            guard let key = configuration.privateKeyPath else {
                throw fail("a certificate needs its private key (no key file given)")
            }
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1 else {
                throw fail("cannot load the private key from \(key)")
            }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw fail("the private key in \(key) does not match the certificate in \(chain)")
            }
        } else if configuration.role == .server {
            throw fail("a TLS server needs a certificate chain and a private key")
        } else if configuration.privateKeyPath != nil {
            throw fail("a private key was given without its certificate")
        }

        switch configuration.role {
        case .server:
            let context = self.context
            let sessionContext = Array("gearlock".utf8)
            _ = SSL_CTX_set_session_id_context(context, sessionContext, UInt32(sessionContext.count))
            switch configuration.clientAuthentication {
            case .none:
                SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
            case .optional, .require:
                guard let roots = configuration.trustRootsPath else {
                    throw fail("client authentication needs a CA bundle (--tls-ca)")
                }
                try loadTrustRoots(roots)
                if let names = SSL_load_client_CA_file(roots) {
                    SSL_CTX_set_client_CA_list(context, names)
                }
                var mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE
                if configuration.clientAuthentication == .require { mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT }
                SSL_CTX_set_verify(context, mode, nil)
            }
        case .client:
            if configuration.verifyPeer {
                if let roots = configuration.trustRootsPath {
                    try loadTrustRoots(roots)
                } else if SSL_CTX_set_default_verify_paths(context) != 1 {
                    throw fail("cannot load the system's trust store")
                }
                SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            } else {
                SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
            }
        }

        if let crl = configuration.crlPath {
            guard let store = SSL_CTX_get_cert_store(context), let lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file())
            else { throw fail("cannot prepare the certificate store for a CRL") }
            guard X509_load_crl_file(lookup, crl, X509_FILETYPE_PEM) > 0 else {
                throw fail("cannot load a certificate revocation list from \(crl)")
            }
            X509_STORE_set_flags(store, UInt(X509_V_FLAG_CRL_CHECK))
        }
    }

    private func loadTrustRoots(_ path: String) throws(TLSError) {
        guard SSL_CTX_load_verify_locations(context, path, nil) == 1 else {
            throw fail("cannot load CA certificates from \(path)")
        }
    }
}
