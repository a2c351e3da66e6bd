import NIOCore
import NIOWebSocket

/// Turns data frames into messages (RFC 6455 §5.4): a continuation only inside a fragmented
/// message, no new message before the last one finished, at most `maxMessageSize` bytes, text
/// that is valid UTF-8. A class: on an uncompressed socket the ``DirectFrameReader`` and the
/// endpoint's async reader (which sees the frames that came before the direct reader was
/// installed) share one, on the socket's event loop.
final class MessageAssembler: @unchecked Sendable {
    enum Outcome {
        case incomplete
        case text(String)
        case binary([UInt8])
        /// Close the socket with this code and reason.
        case refuse(WebSocketErrorCode, String)
    }

    let maxMessageSize: Int
    private var message = ByteBuffer()
    private var isText = true
    private var inMessage = false

    init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    /// `opcode` is text, binary or continuation; `data` is unmasked.
    func accept(opcode: WebSocketOpcode, fin: Bool, data: ByteBuffer) -> Outcome {
        switch opcode {
        case .text, .binary:
            guard !inMessage else { return .refuse(.protocolError, "new message inside a fragmented one") }
            isText = opcode == .text
            // The common case, one frame: no copy.
            if fin {
                guard data.readableBytes <= maxMessageSize else { return tooLarge }
                return finish(data)
            }
            message.clear()
        case .continuation:
            guard inMessage else { return .refuse(.protocolError, "continuation frame without a message") }
        default:
            return .refuse(.protocolError, "unexpected opcode")
        }
        guard message.readableBytes + data.readableBytes <= maxMessageSize else { return tooLarge }
        var data = data
        message.writeBuffer(&data)
        inMessage = !fin
        return fin ? finish(message) : .incomplete
    }

    private var tooLarge: Outcome {
        .refuse(.messageTooLarge, "message larger than maxMessageSize (\(maxMessageSize) bytes)")
    }

    private func finish(_ data: ByteBuffer) -> Outcome {
        inMessage = false
        guard isText else { return .binary(Array(data.readableBytesView)) }
        guard let text = String(validating: data.readableBytesView, as: UTF8.self) else {
            return .refuse(.dataInconsistentWithMessage, "text message is not valid UTF-8")
        }
        return .text(text)
    }
}
