import NIOCore
import NIOWebSocket
import Synchronization
import WebSocketHub
import WSCore

/// Writes a client's frames straight into its channel, in batches: frames queued while the
/// event loop is busy go out together with one flush. Used for sockets without
/// permessage-deflate (compressed ones go through the WebSocket library's writer, which
/// compresses). Bounded like a ``ClientConnection`` queue: frames written but not yet taken
/// by the socket count against `limit`.
final class DirectFrameWriter: Sendable {
    private struct State {
        var waiting: [OutboundFrame] = []
        var drainScheduled = false
        var inFlight = 0
    }

    private let channel: any Channel
    private let outbound: WebSocketOutboundWriter
    private let limit: Int
    private let state = Mutex(State())

    init(channel: any Channel, outbound: WebSocketOutboundWriter, limit: Int) {
        self.channel = channel
        self.outbound = outbound
        self.limit = limit
    }

    /// Queues `frame`; false when the page is `limit` frames behind.
    func enqueue(_ frame: OutboundFrame) -> Bool {
        let (accepted, schedule) = state.withLock { state -> (Bool, Bool) in
            guard state.inFlight + state.waiting.count < limit else { return (false, false) }
            state.waiting.append(frame)
            defer { state.drainScheduled = true }
            return (true, !state.drainScheduled)
        }
        if schedule { channel.eventLoop.execute { self.drain() } }
        return accepted
    }

    /// On the event loop: writes what waits, flushes once. The last write's completion tells
    /// that the socket took the whole batch.
    private func drain() {
        let batch = state.withLock { state -> [OutboundFrame] in
            let batch = state.waiting
            state.waiting.removeAll(keepingCapacity: true)
            state.drainScheduled = false
            state.inFlight += batch.count
            return batch
        }
        guard !batch.isEmpty else { return }
        let done = channel.eventLoop.makePromise(of: Void.self)
        for (index, frame) in batch.enumerated() {
            let promise = index == batch.count - 1 ? done : nil
            switch frame {
            case .text(let text):
                channel.write(WebSocketFrame(fin: true, opcode: .text, data: channel.allocator.buffer(string: text)), promise: promise)
            case .binary(let bytes):
                channel.write(WebSocketFrame(fin: true, opcode: .binary, data: channel.allocator.buffer(bytes: bytes)), promise: promise)
            case .close(let code, let reason):
                // The library runs the close handshake, after what was written before.
                channel.flush()
                let outbound = self.outbound
                Task { try? await outbound.close(WebSocketErrorCode(codeNumber: Int(code)), reason: reason) }
                promise?.succeed()
            }
        }
        channel.flush()
        let count = batch.count
        done.futureResult.whenComplete { _ in self.state.withLock { $0.inFlight -= count } }
    }
}
