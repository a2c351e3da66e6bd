import Foundation
import Logging
import LuaBridge
import NIOCore
import NIOEmbedded
import NIOHTTP1
import PluginHost
import WebSocketHub
import XCTest
@testable import LunarServer

/// The event-loop fast path on an in-memory channel: what it answers, what it passes on, the
/// order of answers, and the idle timeout it keeps (time is the embedded loop's, not a clock).
final class StaticFileFastPathTests: XCTestCase {
    private var root: URL!
    private var channel: EmbeddedChannel!

    override func setUp() async throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("fastpath-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try Data("file a\n".utf8).write(to: root.appendingPathComponent("a.txt"))
        let executor = LuaExecutor(state: try LuaState())
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let hub = Hub(bootID: "test", logger: logger)
        let host = try await PluginHost.make(executor: executor, hub: hub, logger: logger)
        let store = FileStore(root: root.path)
        let pipeline = RequestPipeline(
            host: host, store: store, policy: OriginPolicy(hostname: "127.0.0.1"),
            appIndex: nil, injectionAllowed: true, clientModule: ByteBuffer()
        )
        // The full path reads (and caches) a file first; the fast path answers only cached files.
        _ = store.lookup(["a.txt"])
        channel = EmbeddedChannel(handler: StaticFileFastPath(pipeline: pipeline, idleTimeout: .seconds(10), summary: { PluginSummary() }))
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
    }

    override func tearDown() {
        _ = try? channel.finish()
        try? FileManager.default.removeItem(at: root)
    }

    private func request(_ uri: String, _ headers: [(String, String)] = []) throws {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri)
        head.headers.add(contentsOf: [("Host", "127.0.0.1")] + headers)
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
    }

    /// The parts the fast path wrote: (status, body) per response.
    private func answers() throws -> [(HTTPResponseStatus, String)] {
        var result: [(HTTPResponseStatus, String)] = []
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
            switch part {
            case .head(let head): result.append((head.status, ""))
            case .body(.byteBuffer(let buffer)): result[result.count - 1].1 += String(buffer: buffer)
            case .body, .end: break
            }
        }
        return result
    }

    private func passedOn() throws -> [String] {
        var uris: [String] = []
        while let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
            if case .head(let head) = part { uris.append(head.uri) }
        }
        return uris
    }

    func testAnswersACachedFileAndPassesTheRestOn() throws {
        try request("/a.txt")
        XCTAssertEqual(try answers().map(\.0), [.ok])
        try request("/missing.txt")
        try request("/wds")
        XCTAssertEqual(try passedOn(), ["/missing.txt", "/wds"])
        XCTAssertTrue(try answers().isEmpty)
    }

    func testAFileNotYetInMemoryIsLeftToTheFullPath() throws {
        try Data("new".utf8).write(to: root.appendingPathComponent("new.txt"))
        try request("/new.txt")
        XCTAssertEqual(try passedOn(), ["/new.txt"], "the fast path must not read the disk on the event loop")
    }

    func testWhileARequestPassedOnIsUnansweredLaterOnesWaitInLine() throws {
        try request("/missing.txt")
        try request("/a.txt")  // must not overtake the 404 the full path will write
        XCTAssertEqual(try passedOn(), ["/missing.txt", "/a.txt"])
        XCTAssertTrue(try answers().isEmpty)
        // The full path answers both (its parts pass through the fast path on their way out).
        for _ in 0 ..< 2 {
            try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .notFound)))
            try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        }
        _ = try answers()
        try request("/a.txt")
        XCTAssertEqual(try answers().map(\.0), [.ok], "answered on the event loop again")
    }

    func testRepeatedIfNoneMatchHeadersCount() throws {
        try request("/a.txt")
        let tag = try XCTUnwrap(pipelineTag())
        try request("/a.txt", [("If-None-Match", "\"other\""), ("If-None-Match", tag)])
        XCTAssertEqual(try answers().map(\.0), [.notModified])
    }

    private func pipelineTag() throws -> String? {
        var tag: String?
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
            if case .head(let head) = part { tag = head.headers.first(name: "etag") }
        }
        return tag
    }

    func testAnIdleConnectionIsClosedButNotWhileARequestIsInFlight() throws {
        try request("/missing.txt")  // passed on, not answered yet
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        XCTAssertTrue(channel.isActive, "closed while the full path was still answering")
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .notFound)))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        XCTAssertTrue(channel.isActive, "closed before the timeout after the last activity")
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        XCTAssertFalse(channel.isActive, "an idle connection stayed open")
    }

    func testAClientStalledMidRequestIsCutOff() throws {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/upload")
        head.headers.add(name: "Content-Length", value: "1000")
        try channel.writeInbound(HTTPServerRequestPart.head(head))  // and no body ever comes
        XCTAssertEqual(try passedOn(), ["/upload"])
        channel.embeddedEventLoop.advanceTime(by: .seconds(11))
        XCTAssertFalse(channel.isActive, "a request that never finished kept the connection open")
    }

    func testTrafficKeepsTheConnectionOpen() throws {
        for _ in 0 ..< 5 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(6))
            try request("/a.txt")
            _ = try answers()
        }
        XCTAssertTrue(channel.isActive)
    }
}
