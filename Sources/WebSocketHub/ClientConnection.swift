/// One open socket of a client: a bounded queue of outbound frames, drained by the socket's
/// writer. When a page stops reading, its queue fills and the connection is aborted, so one
/// slow page never holds up a broadcast to the others.
public final class ClientConnection: Sendable {
    /// What the socket's writer sends, in order.
    public let frames: AsyncStream<OutboundFrame>
    private let continuation: AsyncStream<OutboundFrame>.Continuation
    private let abortHandler: @Sendable (UInt16, String) -> Void

    /// - Parameters:
    ///   - queueLimit: frames that may wait for a slow reader before it is cut off.
    ///   - onAbort: closes the socket at once (the writer may be stuck on a full socket).
    public init(queueLimit: Int, onAbort: @escaping @Sendable (UInt16, String) -> Void) {
        (frames, continuation) = AsyncStream.makeStream(of: OutboundFrame.self, bufferingPolicy: .bufferingOldest(queueLimit))
        abortHandler = onAbort
    }

    /// Queues a frame; false when the queue is full (the caller then aborts the connection).
    func enqueue(_ frame: OutboundFrame) -> Bool {
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
