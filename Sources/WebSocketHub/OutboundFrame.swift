/// A message on its way to a page. Text is shared, not copied, when broadcast.
public enum OutboundFrame: Sendable, Equatable {
    case text(String)
    case binary([UInt8])
    /// Close the socket with this code and reason, after the frames queued before it.
    case close(code: UInt16, reason: String)
}

/// Close codes the hub uses (RFC 6455 §7.4.1).
public enum CloseCode {
    public static let normal: UInt16 = 1000
    public static let goingAway: UInt16 = 1001
    public static let policyViolation: UInt16 = 1008
    public static let messageTooBig: UInt16 = 1009
    public static let tryAgainLater: UInt16 = 1013
}
