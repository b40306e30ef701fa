import PostgresNIO

/// Turning what postgres-nio reports into `QueueStoreError`s an operator can act on.
///
/// Messages name the server as `host:port/database` (and the user where it matters), never the
/// password. `PSQLError`'s own description is deliberately blank, so the parts that are safe to show
/// are picked out one by one: the SQLSTATE and the server's message, detail and hint, or the network
/// error underneath. The query (with its bound values, which hold job payloads) never is.
enum PostgresQueueErrors {
    /// Whether `error` means the connection is gone (or was never made), so the next operation
    /// needs a new one, as opposed to an error the server reported on a working connection.
    static func isConnectionLost(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return true }
        switch error.code {
        case .server:
            // Class 08: connection exceptions; 57P01-57P03: the server ends the session (an
            // administrator's pg_terminate_backend, a shutdown, a crash of another backend).
            guard let state = error.serverInfo?[.sqlState] else { return false }
            return state.hasPrefix("08") || state.hasPrefix("57P")
        case .tooManyParameters, .queryCancelled, .invalidCommandTag:
            return false
        default:
            return true
        }
    }

    /// The SQLSTATE of an error the server reported.
    static func sqlState(_ error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    /// What the server or the network said, without the query: "(PostgreSQL 28P01: password
    /// authentication failed for user "x")".
    static func detail(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "(\(error))" }
        if let info = error.serverInfo {
            var text = "PostgreSQL"
            if let state = info[.sqlState] { text += " \(state)" }
            text += ": " + (info[.message] ?? "an error without a message")
            if let detail = info[.detail] { text += "; \(detail)" }
            if let hint = info[.hint] { text += "; hint: \(hint)" }
            return "(\(text))"
        }
        if let underlying = error.underlying {
            return "(\(error.code): \(underlying))"
        }
        return "(\(error.code))"
    }

    /// The error for a failure while connecting, logging in or preparing the tables.
    static func opening(_ error: any Error, location: PostgresQueueLocation) -> QueueStoreError {
        if let error = error as? QueueStoreError { return error }
        let path = location.description
        let server = "PostgreSQL at \(location.endpoint)"
        let detail = Self.detail(error)
        guard let psql = error as? PSQLError else {
            return QueueStoreError(.cannotOpen, "cannot open the queue on \(server) \(detail)", path: path)
        }
        switch (psql.code, Self.sqlState(error)) {
        case (.server, "28P01"?), (.server, "28000"?):
            return QueueStoreError(
                .cannotOpen,
                "\(server) refused user \"\(location.username)\" \(detail); check the user and password in the "
                    + "queue URL and the server's pg_hba.conf",
                path: path)
        case (.server, "3D000"?):
            return QueueStoreError(
                .cannotOpen,
                "\(server): the database \"\(location.database)\" does not exist \(detail); create it "
                    + "(CREATE DATABASE \(location.database) OWNER \(location.username)) or fix the queue URL",
                path: path)
        case (.server, "42501"?):
            return QueueStoreError(
                .readOnly,
                "\(server): user \"\(location.username)\" may not create or use the queue tables \(detail); grant "
                    + "it the rights, or let it own the database",
                path: path)
        case (.server, "57P03"?), (.server, "53300"?), (.server, "53400"?):
            return QueueStoreError(
                .cannotOpen, "\(server) does not accept connections now \(detail); try again later", path: path)
        case (.server, _):
            return QueueStoreError(
                .ioError, "preparing the queue on \(server) failed \(detail)", path: path)
        case (.authMechanismRequiresPassword, _):
            return QueueStoreError(
                .cannotOpen,
                "\(server) asks user \"\(location.username)\" for a password, and the queue URL has none; write "
                    + "it as postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                path: path)
        case (.unsupportedAuthMechanism, _), (.saslError, _):
            return QueueStoreError(
                .cannotOpen,
                "\(server) asks for an authentication method gearlock does not support \(detail); let the user "
                    + "log in with a password (scram-sha-256 or md5) in pg_hba.conf",
                path: path)
        case (.connectionError, _):
            return QueueStoreError(
                .cannotOpen,
                "cannot connect to \(server) \(detail); is the server running, does it listen on that address, "
                    + "and does a firewall let the connection through?",
                path: path)
        default:
            return QueueStoreError(
                .cannotOpen, "cannot open the queue on \(server) \(detail)", path: path)
        }
    }

    /// The error for a failed commit or read of the jobs of `server`.
    static func operating(
        _ error: any Error, doing what: String, location: PostgresQueueLocation, server: String
    ) -> QueueStoreError {
        if let error = error as? QueueStoreError { return error }
        let path = location.description
        let detail = Self.detail(error)
        if Self.isConnectionLost(error) {
            return QueueStoreError(
                .ioError,
                "\(what) of server \"\(server)\" failed: the connection to PostgreSQL at \(location.endpoint) was "
                    + "lost \(detail); the store connects again for the next batch",
                path: path)
        }
        switch Self.sqlState(error) {
        case "54000"?, "22001"?:
            return QueueStoreError(
                .tooLarge, "a job is too large for PostgreSQL at \(location.endpoint) \(detail)", path: path)
        case let state? where state.hasPrefix("53"):
            return QueueStoreError(
                .ioError,
                "PostgreSQL at \(location.endpoint) is out of resources (disk, memory or connections) \(detail)",
                path: path)
        case "25006"?:
            return QueueStoreError(
                .readOnly,
                "PostgreSQL at \(location.endpoint) is read-only (a standby, or default_transaction_read_only) "
                    + "\(detail); point the queue URL at the primary",
                path: path)
        default:
            return QueueStoreError(
                .ioError, "\(what) of server \"\(server)\" on PostgreSQL at \(location.endpoint) failed \(detail)",
                path: path)
        }
    }

    /// The error for an operation asked of a store after `close()`.
    static func closed(location: PostgresQueueLocation, server: String) -> QueueStoreError {
        QueueStoreError(
            .closed, "the queue of server \"\(server)\" on PostgreSQL at \(location.endpoint) was closed",
            path: location.description)
    }
}
