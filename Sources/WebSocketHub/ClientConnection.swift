/// One open socket of a client: a bounded queue of outbound frames, drained by the socket's
/// writer. When a page stops reading, its queue fills and the connection is aborted, so one
/// slow page never holds up a broadcast to the others.
public final class ClientConnection: Sendable {
    /// What the socket's writer sends, in order.
    public let frames: AsyncStream<OutboundFrame>
    private let continuation: AsyncStream<OutboundFrame>.Continuation
    private let abortHandler: @Sendable (UInt16, String) -> Void
    private let sink: (@Sendable (OutboundFrame) -> Bool)?

    /// - Parameters:
    ///   - queueLimit: frames that may wait for a slow reader before it is cut off.
    ///   - sink: when given, frames go to it instead of `frames` (a socket written to directly,
    ///     which keeps its own bound and returns false when it is full).
    ///   - onAbort: closes the socket at once (the writer may be stuck on a full socket).
    public init(queueLimit: Int, sink: (@Sendable (OutboundFrame) -> Bool)? = nil, onAbort: @escaping @Sendable (UInt16, String) -> Void) {
        (frames, continuation) = AsyncStream.makeStream(of: OutboundFrame.self, bufferingPolicy: .bufferingOldest(queueLimit))
        abortHandler = onAbort
        self.sink = sink
        if sink != nil { continuation.finish() }
    }

    /// Queues a frame; false when the queue is full (the caller then aborts the connection).
    func enqueue(_ frame: OutboundFrame) -> Bool {
        if let sink { return sink(frame) }
        switch continuation.yield(frame) {
        case .enqueued: return true
        case .dropped, .terminated: return false
        @unknown default: return false
        }
    }

    func abort(code: UInt16, reason: String) {
        continuation.finish()
        abortHandler(code, reason)
    }

    /// Ends the writer after the queued frames.
    public func finish() { continuation.finish() }
}
