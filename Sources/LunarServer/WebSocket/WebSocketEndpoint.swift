import Foundation
import HTTPTypes
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import PluginHost
import WebSocketHub

/// `/wds`: accepts the upgrade (SPEC §6 Origin rule), then for each socket runs a reader that
/// hands messages to the plugins and a writer that drains the client's outbound queue.
/// Framing, masking, ping/pong and permessage-deflate are HummingbirdWebSocket's.
struct WebSocketEndpoint: Sendable {
    let hub: Hub
    let host: PluginHost
    let policy: OriginPolicy
    let maxMessageSize: Int
    let logger: Logger
    static let path = "/wds"
    /// Frames waiting for a slow page before it is cut off.
    static let queueLimit = 4096

    func shouldUpgrade(_ request: HTTPRequest, channel: any Channel) -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        guard let target = request.path, target == Self.path || target.hasPrefix(Self.path + "?") else { return .dontUpgrade }
        guard policy.allows(host: request.authority),
              policy.allowsWebSocket(origin: request.headerFields[.origin], host: request.authority) else {
            logger.warning("refused a WebSocket upgrade from origin \(request.headerFields[.origin] ?? "?")")
            return .dontUpgrade
        }
        let query = (try? RequestPath(target: target))?.queryItems ?? [:]
        let session = query["session"].flatMap { Self.isValidSession($0) ? $0 : nil }
        let acknowledged = query["ack"].flatMap { UInt64($0) } ?? 0
        // Offered compression is always accepted; then frames must go through the library's writer.
        let compressed = request.headerFields[values: .secWebSocketExtensions].contains { $0.contains("permessage-deflate") }
        return .upgrade([:]) { inbound, outbound, _ in
            await withTaskExecutorPreference(EventLoopTaskExecutor(channel.eventLoop)) {
                await self.run(
                    inbound: inbound, outbound: outbound, channel: channel,
                    session: session, acknowledged: acknowledged, compressed: compressed
                )
            }
        }
    }

    private static func isValidSession(_ session: String) -> Bool {
        (8 ... 64).contains(session.utf8.count) && session.utf8.allSatisfy {
            (48 ... 57).contains($0) || (65 ... 90).contains($0) || (97 ... 122).contains($0) || $0 == 45 || $0 == 95
        }
    }

    private func run(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, channel: any Channel,
        session: String?, acknowledged: UInt64, compressed: Bool
    ) async {
        FrameTooLargeResponder.install(on: channel, limit: maxMessageSize)
        var sink: (@Sendable (OutboundFrame) -> Bool)?
        if !compressed {
            let writer = DirectFrameWriter(channel: channel, outbound: outbound, limit: Self.queueLimit)
            sink = { frame in writer.enqueue(frame) }
        }
        let connection = ClientConnection(queueLimit: Self.queueLimit, sink: sink) { code, reason in
            // The writer may be stuck on a full socket: the close frame may never get out, so
            // the socket is dropped a second later whatever happens to it.
            Task { try? await outbound.close(WebSocketErrorCode(codeNumber: Int(code)), reason: reason) }
            Task {
                try? await Task.sleep(for: .seconds(1))
                try? await channel.close()
            }
        }
        let joined = hub.connect(session: session, acknowledged: acknowledged, connection: connection)
        if !joined.resumed { host.connected(joined.clientID) }
        var directReader: DirectFrameReader?
        if !compressed {
            let clientID = joined.clientID
            let reader = DirectFrameReader(
                clientID: clientID, host: host, resumable: session != nil, maxMessageSize: maxMessageSize
            ) { code, reason in
                self.refused(clientID, code)
                // After the answers to the messages before the bad frame.
                host.afterEvents { Task { try? await outbound.close(code, reason: reason) } }
            }
            // On the event loop (this task prefers it), before any later frame is read.
            if channel.eventLoop.inEventLoop {
                try? reader.install(on: channel)
            } else {
                try? await channel.eventLoop.submit { try reader.install(on: channel) }.get()
            }
            directReader = reader
        }

        var leaving = false
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await Self.write(connection.frames, to: outbound) }
            leaving = await read(
                inbound, outbound: outbound, clientID: joined.clientID, resumable: session != nil,
                assembler: directReader?.assembler ?? MessageAssembler(maxMessageSize: maxMessageSize)
            )
            connection.finish()
            await group.waitForAll()
        }
        leaving = leaving || directReader?.leaving.load(ordering: .relaxed) == true
        if hub.disconnected(joined.clientID, connection: connection, leaving: leaving) {
            host.disconnected(joined.clientID)
        }
    }

    private static func write(_ frames: AsyncStream<OutboundFrame>, to outbound: WebSocketOutboundWriter) async {
        do {
            for await frame in frames {
                switch frame {
                case .text(let text): try await outbound.write(.text(text))
                case .binary(let bytes): try await outbound.write(.binary(ByteBuffer(bytes: bytes)))
                case .close(let code, let reason):
                    try await outbound.close(WebSocketErrorCode(codeNumber: Int(code)), reason: reason)
                    return
                }
            }
        } catch {
            // The socket is gone; the reader sees it end too.
        }
    }

    /// What a page sends when it leaves for good: its session ends at once.
    static let goodbye = #"{"type":"lunar:bye"}"#

    /// Reads messages until the socket ends; returns true when the page said it is leaving.
    /// (On an uncompressed socket the ``DirectFrameReader`` takes the data frames; this loop
    /// then sees only those that came before it was installed.)
    private func read(
        _ inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, clientID: String, resumable: Bool,
        assembler: MessageAssembler
    ) async -> Bool {
        do {
            for try await frame in inbound {
                switch assembler.accept(opcode: frame.opcode.webSocketOpcode, fin: frame.fin, data: frame.data) {
                case .incomplete: break
                case .text(let text):
                    if resumable, text == Self.goodbye { return true }
                    host.received(text: text, from: clientID)
                case .binary(let bytes): host.received(binary: bytes, from: clientID)
                case .refuse(let code, let reason):
                    refused(clientID, code)
                    try? await outbound.close(code, reason: reason)
                    return false
                }
            }
        } catch {
            logger.debug("WebSocket of client \(clientID) ended: \(error)")
        }
        return false
    }

    private func refused(_ clientID: String, _ code: WebSocketErrorCode) {
        if code == .messageTooLarge {
            logger.info("client \(clientID) sent a message over \(maxMessageSize) bytes: closing it with 1009")
        }
    }
}

extension WebSocketDataFrame.Opcode {
    var webSocketOpcode: WebSocketOpcode {
        switch self {
        case .text: .text
        case .binary: .binary
        case .continuation: .continuation
        }
    }
}
