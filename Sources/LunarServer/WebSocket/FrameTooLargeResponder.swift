import NIOCore
import NIOWebSocket

/// Sits right after NIO's WebSocket frame decoder: a frame longer than the limit is answered
/// with close code 1009 *and a reason* (NIO's own handler sends the code alone), then the
/// connection is closed.
final class FrameTooLargeResponder: ChannelInboundHandler, Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard case NIOWebSocketError.invalidFrameLength = error else {
            context.fireErrorCaught(error)
            return
        }
        var payload = context.channel.allocator.buffer(capacity: 64)
        payload.write(webSocketErrorCode: .messageTooLarge)
        payload.writeString("message larger than maxMessageSize (\(limit) bytes)")
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in loopBound.value.close(promise: nil) }
    }

    /// Installs the responder after the frame decoder of an upgraded `channel`.
    static func install(on channel: any Channel, limit: Int) {
        let add = {
            let operations = channel.pipeline.syncOperations
            guard let decoder = try? operations.handler(type: ByteToMessageHandler<WebSocketFrameDecoder>.self) else { return }
            try? operations.addHandler(FrameTooLargeResponder(limit: limit), position: .after(decoder))
        }
        if channel.eventLoop.inEventLoop { add() } else { channel.eventLoop.execute(add) }
    }
}
