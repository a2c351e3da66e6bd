import NIOCore
import NIOWebSocket
import PluginHost
import Synchronization

/// Reads the data frames of an uncompressed socket right on its event loop, after NIO's frame
/// decoder, and hands whole messages to the plugins; it answers pings itself (so a pong is
/// never overtaken by a reply), and the other control frames (pong, close) go on to the
/// WebSocket library. Compressed sockets are read by the library,
/// which inflates them (see ``WebSocketEndpoint``).
final class DirectFrameReader: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: the mutable state is touched on the channel's event loop only.
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame

    private let clientID: String
    private let host: PluginHost
    private let resumable: Bool
    private let refuse: @Sendable (WebSocketErrorCode, String) -> Void
    let assembler: MessageAssembler
    private var refused = false
    /// Set when the page said it is leaving for good (`lunar:bye`).
    let leaving = Atomic<Bool>(false)

    init(clientID: String, host: PluginHost, resumable: Bool, maxMessageSize: Int, refuse: @escaping @Sendable (WebSocketErrorCode, String) -> Void) {
        self.clientID = clientID
        self.host = host
        self.resumable = resumable
        self.assembler = MessageAssembler(maxMessageSize: maxMessageSize)
        self.refuse = refuse
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary, .continuation:
            break
        case .ping where !refused && frame.fin:
            // Answered here, so the pong is not overtaken by a message answered meanwhile.
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.writeAndFlush(NIOAny(pong), promise: nil)
            return
        case .connectionClose, .pong:
            // Nothing after a close is a message (RFC 6455 §5.5.1).
            if frame.opcode == .connectionClose { refused = true }
            context.fireChannelRead(data)
            return
        default:
            if !refused { stop(.protocolError, "reserved opcode") }
            return
        }
        guard !refused else { return }
        guard !frame.rsv1, !frame.rsv2, !frame.rsv3 else { return stop(.protocolError, "reserved bits set without an extension") }
        switch assembler.accept(opcode: frame.opcode, fin: frame.fin, data: frame.unmaskedData) {
        case .incomplete: break
        case .text(let text):
            if resumable, text == WebSocketEndpoint.goodbye {
                leaving.store(true, ordering: .relaxed)
            } else {
                host.received(text: text, from: clientID)
            }
        case .binary(let bytes): host.received(binary: bytes, from: clientID)
        case .refuse(let code, let reason): stop(code, reason)
        }
    }

    private func stop(_ code: WebSocketErrorCode, _ reason: String) {
        refused = true
        refuse(code, reason)
    }

    /// Installs a reader right after the frame decoder of `channel`; call on its event loop.
    func install(on channel: any Channel) throws {
        let operations = channel.pipeline.syncOperations
        let decoder = try operations.handler(type: ByteToMessageHandler<WebSocketFrameDecoder>.self)
        try operations.addHandler(self, position: .after(decoder))
    }
}
