/// What a connection that has not authenticated may do. The default grants nothing.
public struct AnonymousRights: Sendable, Hashable {
    public var canDo: [FunctionPattern]
    public var submit: [FunctionPattern]
    public var admin: AdminLevel

    public init(canDo: [FunctionPattern] = [], submit: [FunctionPattern] = [], admin: AdminLevel = .none) {
        self.canDo = canDo
        self.submit = submit
        self.admin = admin
    }

    /// No rights at all.
    public static let none = AnonymousRights()
}
