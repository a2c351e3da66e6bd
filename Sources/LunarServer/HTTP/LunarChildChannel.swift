import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// Hummingbird's HTTP/1 + WebSocket child channel, with ``StaticFileFastPath`` right after
/// the HTTP decoder and ``MalformedRequestResponder`` last in the pipeline.
struct LunarChildChannel: ServerChildChannel {
    let inner: HTTP1WebSocketUpgradeChannel
    let fastPath: @Sendable () -> StaticFileFastPath

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1WebSocketUpgradeChannel.Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let operations = channel.pipeline.syncOperations
            let decoder = try operations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try operations.addHandler(fastPath(), position: .after(decoder))
            try operations.addHandler(MalformedRequestResponder())
            return value
        }
    }

    /// Sets up pipelines on in-memory channels and passes a request and a WebSocket upgrade
    /// through them, once, before the server listens: the Swift runtime then makes the generic
    /// types these use on one thread. When two event loops made them at once for their first
    /// connections, the runtime's metadata cache raced and crashed (Swift 6.3, seen in CI).
    /// The upgrade's handler never runs (`handle` is not called): no client joins the hub. A
    /// mitigation: types first met later (Hummingbird's request loop, the socket handlers) are
    /// not warmed.
    func warmUp() {
        let requests = [
            "GET /__lunar_warm_up HTTP/1.1\r\nHost: localhost\r\n\r\n",
            "GET /wds HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        ]
        for request in requests {
            let channel = EmbeddedChannel()
            _ = setup(channel: channel, logger: Logger(label: "lunar.warm-up", factory: { _ in SwiftLogNoOpLogHandler() }))
            try? channel.writeInbound(ByteBuffer(string: request))
            channel.embeddedEventLoop.run()  // the upgrade completes in scheduled tasks
            _ = try? channel.finish()
        }
    }

    func handle(value: HTTP1WebSocketUpgradeChannel.Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}
