import Foundation
import Synchronization
import XCTest
@testable import WebSocketHub

/// A socket stand-in: its connection plus the aborts it got.
final class FakeSocket: Sendable {
    let connection: ClientConnection
    private let recorder: Recorder

    init(queueLimit: Int = 1000) {
        let recorder = Recorder()
        connection = ClientConnection(queueLimit: queueLimit) { code, reason in recorder.add(code, reason) }
        self.recorder = recorder
    }

    var aborts: [(code: UInt16, reason: String)] { recorder.all }

    /// Ends the stream and returns every frame that was queued, in order.
    func drain() async -> [OutboundFrame] {
        connection.finish()
        var frames: [OutboundFrame] = []
        for await frame in connection.frames { frames.append(frame) }
        return frames
    }

    /// The text of each frame (binary and close frames described).
    func drainTexts() async -> [String] {
        await drain().map { frame in
            switch frame {
            case .text(let text): text
            case .binary(let bytes): "binary \(bytes)"
            case .close(let code, let reason): "close \(code) \(reason)"
            }
        }
    }
}

final class Recorder: Sendable {
    private let items = Mutex<[(code: UInt16, reason: String)]>([])
    func add(_ code: UInt16, _ reason: String) { items.withLock { $0.append((code, reason)) } }
    var all: [(code: UInt16, reason: String)] { items.withLock { $0 } }
}

/// The decoded Lunar hello, or nil if `text` is not one.
func hello(_ text: String?) -> [String: Any]? {
    guard let text, let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
          object["type"] as? String == "lunar:hello" else { return nil }
    return object
}
