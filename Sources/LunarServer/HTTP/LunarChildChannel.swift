import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
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

    func handle(value: HTTP1WebSocketUpgradeChannel.Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}
