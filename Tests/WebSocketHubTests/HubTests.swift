import Foundation
import XCTest
@testable import WebSocketHub

final class HubTests: XCTestCase {
    private let hub = Hub(bootID: "boot1")

    @discardableResult
    private func connect(_ socket: FakeSocket, session: String? = nil, acknowledged: UInt64 = 0, hub: Hub? = nil) -> Hub.Joined {
        (hub ?? self.hub).connect(session: session, acknowledged: acknowledged, connection: socket.connection)
    }

    // MARK: Ids and rooms

    func testIDsAreUniqueAndNeverReused() {
        var ids: [String] = []
        for i in 0 ..< 50 {
            ids.append(connect(FakeSocket(), session: i % 2 == 0 ? "session-\(i)" : nil).clientID)
        }
        XCTAssertEqual(Set(ids).count, 50)
        XCTAssertEqual(hub.clientIDs(), ids, "in the order they connected")

        let socket = FakeSocket()
        let first = connect(socket).clientID
        XCTAssertTrue(hub.disconnected(first, connection: socket.connection, leaving: false))
        let second = connect(FakeSocket()).clientID
        XCTAssertNotEqual(first, second)
        XCTAssertFalse(ids.contains(second))
    }

    func testRooms() {
        let id = connect(FakeSocket()).clientID
        hub.join(id, room: "zeta")
        hub.join(id, room: "alpha")
        hub.join(id, room: "alpha")
        hub.join(id, room: "mid")
        XCTAssertEqual(hub.rooms(of: id), ["alpha", "mid", "zeta"])
        hub.leave(id, room: "mid")
        hub.leave(id, room: "never-joined")
        XCTAssertEqual(hub.rooms(of: id), ["alpha", "zeta"])
        XCTAssertEqual(hub.rooms(of: "c999"), [])
        hub.join("c999", room: "alpha")  // unknown client: nothing happens
        XCTAssertEqual(hub.rooms(of: "c999"), [])
        XCTAssertFalse(hub.isConnected("c999"))
    }

    func testTargets() async {
        let (x, y, z) = (FakeSocket(), FakeSocket(), FakeSocket())
        let xID = connect(x).clientID, yID = connect(y).clientID, zID = connect(z).clientID
        hub.join(xID, room: "r")
        hub.join(yID, room: "r")
        hub.join(zID, room: "other")
        hub.send(.text("room"), to: .room("r"))
        hub.send(.text("to z"), to: .client(zID))
        hub.send(.text("not x"), to: .allExcept(xID))
        hub.send(.text("everyone"), to: .all)
        hub.send(.binary([1, 2]), to: .client(yID))
        hub.send(.text("nobody"), to: .room("empty"))
        hub.send(.text("nobody"), to: .client("c999"))
        hub.leave(yID, room: "r")
        hub.send(.text("room again"), to: .room("r"))
        let (xs, ys, zs) = (await x.drainTexts(), await y.drainTexts(), await z.drainTexts())
        XCTAssertEqual(xs, ["room", "everyone", "room again"])
        XCTAssertEqual(ys, ["room", "not x", "everyone", "binary [1, 2]"])
        XCTAssertEqual(zs, ["to z", "not x", "everyone"])
    }

    // MARK: Sessions and replay

    func testSessionClientResumesWithExactlyTheFramesItMissed() async throws {
        let first = FakeSocket()
        let joined = connect(first, session: "page-one")
        XCTAssertFalse(joined.resumed)
        let id = joined.clientID
        hub.join(id, room: "chat")
        for n in 1 ... 3 { hub.send(.text("before \(n)"), to: .all) }
        let received = await first.drainTexts()
        let firstHello = try XCTUnwrap(hello(received.first), "the first frame is the hello")
        XCTAssertEqual(firstHello["resumed"] as? Bool, false)
        XCTAssertEqual(firstHello["boot"] as? String, "boot1")
        XCTAssertEqual(firstHello["session"] as? String, "page-one")
        XCTAssertEqual(firstHello["count"] as? Int, 0)
        XCTAssertEqual(Array(received.dropFirst()), ["before 1", "before 2", "before 3"])

        // The socket drops; the page is kept, with its id and rooms.
        XCTAssertFalse(hub.disconnected(id, connection: first.connection, leaving: false))
        XCTAssertEqual(hub.clientIDs(), [id])
        XCTAssertEqual(hub.rooms(of: id), ["chat"])
        XCTAssertEqual(hub.connectedCount, 0)
        hub.send(.text("down 1"), to: .room("chat"))
        hub.send(.text("down 2"), to: .client(id))
        hub.send(.text("down 3"), to: .all)
        hub.send(.text("down 4"), to: .allExcept("c999"))

        // It comes back having counted 3 frames (the hello is not counted).
        let second = FakeSocket()
        let rejoined = connect(second, session: "page-one", acknowledged: 3)
        XCTAssertTrue(rejoined.resumed)
        XCTAssertEqual(rejoined.clientID, id)
        hub.send(.text("after"), to: .room("chat"))
        let replayed = await second.drainTexts()
        let secondHello = try XCTUnwrap(hello(replayed.first), "the hello comes first, before the replay")
        XCTAssertEqual(secondHello["resumed"] as? Bool, true)
        XCTAssertEqual(secondHello["count"] as? Int, 3)
        XCTAssertEqual(Array(replayed.dropFirst()), ["down 1", "down 2", "down 3", "down 4", "after"])
        XCTAssertTrue(first.aborts.isEmpty)
    }

    func testPageThatReceivedNothingGetsEverything() async {
        let first = FakeSocket()
        let id = connect(first, session: "page-two").clientID
        hub.send(.text("1"), to: .all)   // queued, but the socket died before the page read it
        hub.send(.text("2"), to: .all)
        XCTAssertFalse(hub.disconnected(id, connection: first.connection, leaving: false))
        hub.send(.text("3"), to: .all)
        let second = FakeSocket()
        XCTAssertTrue(connect(second, session: "page-two", acknowledged: 0).resumed)
        let texts = await second.drainTexts()
        XCTAssertEqual(hello(texts.first)?["count"] as? Int, 0)
        XCTAssertEqual(Array(texts.dropFirst()), ["1", "2", "3"])
    }

    func testRepeatedReconnectsNeverRepeatAFrame() async {
        var socket = FakeSocket()
        let id = connect(socket, session: "page-three").clientID
        var seen: [String] = []
        var counted: UInt64 = 0
        for round in 1 ... 5 {
            for n in 1 ... round { hub.send(.text("r\(round)-\(n)"), to: .all) }
            // The page reads everything queued, drops, more is sent, it reconnects.
            let texts = await socket.drainTexts().filter { hello($0) == nil }
            seen += texts
            counted += UInt64(texts.count)
            XCTAssertFalse(hub.disconnected(id, connection: socket.connection, leaving: false))
            hub.send(.text("gap\(round)"), to: .client(id))
            socket = FakeSocket()
            XCTAssertEqual(connect(socket, session: "page-three", acknowledged: counted).clientID, id)
        }
        seen += await socket.drainTexts().filter { hello($0) == nil }
        var expected: [String] = []
        for round in 1 ... 5 { expected += (1 ... round).map { "r\(round)-\($0)" } + ["gap\(round)"] }
        XCTAssertEqual(seen, expected)
    }

    func testANewerSocketOfTheSamePageReplacesTheOlder() async {
        let old = FakeSocket(), new = FakeSocket()
        let id = connect(old, session: "page-four").clientID
        let joined = connect(new, session: "page-four", acknowledged: 0)
        XCTAssertEqual(joined.clientID, id)
        XCTAssertEqual(old.aborts.map(\.code), [CloseCode.policyViolation])
        // The old socket's end does not drop the page.
        XCTAssertFalse(hub.disconnected(id, connection: old.connection, leaving: false))
        XCTAssertEqual(hub.connectedCount, 1)
        hub.send(.text("x"), to: .all)
        let texts = await new.drainTexts()
        XCTAssertEqual(texts.last, "x")
    }

    func testLeavingRemovesASessionClientAtOnce() async {
        let socket = FakeSocket()
        let id = connect(socket, session: "page-five").clientID
        hub.join(id, room: "r")
        XCTAssertTrue(hub.disconnected(id, connection: socket.connection, leaving: true))
        XCTAssertEqual(hub.clientIDs(), [])
        XCTAssertEqual(hub.rooms(of: id), [])
        // Coming back with the same session is a new client.
        let again = FakeSocket()
        let joined = connect(again, session: "page-five", acknowledged: 4)
        XCTAssertFalse(joined.resumed)
        XCTAssertNotEqual(joined.clientID, id)
        let firstFrame = await again.drainTexts().first
        XCTAssertEqual(hello(firstFrame)?["resumed"] as? Bool, false)
    }

    func testClientWithoutSessionIsRemovedAtOnce() async {
        let socket = FakeSocket()
        let id = connect(socket).clientID
        hub.join(id, room: "r")
        XCTAssertTrue(hub.disconnected(id, connection: socket.connection, leaving: false))
        XCTAssertEqual(hub.clientIDs(), [])
        XCTAssertFalse(hub.isConnected(id))
        let texts = await socket.drainTexts()
        XCTAssertEqual(texts, [], "no hello without a session")
    }

    func testDroppedSessionExpiresAfterTheResumeWindow() async throws {
        let hub = Hub(bootID: "b", resumeWindow: 0.1)
        let socket = FakeSocket()
        let id = connect(socket, session: "page-six", hub: hub).clientID
        XCTAssertFalse(hub.disconnected(id, connection: socket.connection, leaving: false))
        XCTAssertEqual(hub.expireDroppedClients(), [])
        XCTAssertEqual(hub.clientIDs(), [id])
        try await Task.sleep(for: .milliseconds(250))
        XCTAssertEqual(hub.expireDroppedClients(), [id])
        XCTAssertEqual(hub.clientIDs(), [])
        XCTAssertEqual(hub.expireDroppedClients(), [])
        XCTAssertFalse(connect(FakeSocket(), session: "page-six", acknowledged: 2, hub: hub).resumed)
    }

    func testCloseEndsTheSocketAndForgetsTheClient() async {
        let socket = FakeSocket()
        let id = connect(socket, session: "page-seven").clientID
        hub.send(.text("bye soon"), to: .all)
        XCTAssertFalse(hub.close(id, code: 4000, reason: "done"))
        hub.send(.text("too late"), to: .all)
        let texts = await socket.drainTexts()
        XCTAssertEqual(Array(texts.dropFirst()), ["bye soon", "close 4000 done"])
        XCTAssertTrue(hub.disconnected(id, connection: socket.connection, leaving: false), "closed by the server: not kept")
        XCTAssertEqual(hub.clientIDs(), [])

        // A page waiting to resume is closed at once.
        let other = FakeSocket()
        let otherID = connect(other, session: "page-eight").clientID
        _ = hub.disconnected(otherID, connection: other.connection, leaving: false)
        XCTAssertTrue(hub.close(otherID, code: 4000, reason: "done"))
        XCTAssertEqual(hub.clientIDs(), [])
    }

    // MARK: Slow readers

    func testOverflowingQueueAbortsOnlyThatConnection() async {
        let slow = FakeSocket(queueLimit: 10), fast = FakeSocket(queueLimit: 100)
        connect(slow)
        connect(fast)
        for n in 1 ... 30 { hub.send(.text("\(n)"), to: .all) }
        XCTAssertEqual(slow.aborts.map(\.code), [CloseCode.tryAgainLater], "aborted once, with 1013")
        let fastTexts = await fast.drainTexts()
        XCTAssertEqual(fastTexts, (1 ... 30).map(String.init))
        let slowTexts = await slow.drainTexts()
        XCTAssertEqual(slowTexts, (1 ... 10).map(String.init), "what fitted, then the end")
    }

    /// The socket of an aborted page then ends, and the server reports it: a page without a
    /// session must then be gone (and its `disconnect` event fired), as for any other socket.
    func testOverflowedClientWithoutSessionIsRemovedWhenItsSocketEnds() {
        let slow = FakeSocket(queueLimit: 10)
        let id = connect(slow).clientID
        hub.join(id, room: "r")
        for n in 1 ... 11 { hub.send(.text("\(n)"), to: .all) }
        XCTAssertEqual(slow.aborts.map(\.code), [CloseCode.tryAgainLater])
        XCTAssertTrue(hub.disconnected(id, connection: slow.connection, leaving: false), "gone now, not after the resume window")
        XCTAssertEqual(hub.clientIDs(), [])
        XCTAssertFalse(hub.isConnected(id))
    }

    func testOverflowedSessionClientResumesWhereItStopped() async {
        let slow = FakeSocket(queueLimit: 10)
        let id = connect(slow, session: "page-nine").clientID
        for n in 1 ... 20 { hub.send(.text("\(n)"), to: .all) }
        XCTAssertEqual(slow.aborts.map(\.code), [CloseCode.tryAgainLater])
        let got = await slow.drainTexts().filter { hello($0) == nil }
        XCTAssertEqual(got, (1 ... 9).map(String.init), "the hello took one place in the queue")
        _ = hub.disconnected(id, connection: slow.connection, leaving: false)
        let again = FakeSocket(queueLimit: 100)
        XCTAssertTrue(connect(again, session: "page-nine", acknowledged: UInt64(got.count)).resumed)
        let replayed = await again.drainTexts()
        XCTAssertEqual(hello(replayed.first)?["count"] as? Int, 9)
        XCTAssertEqual(Array(replayed.dropFirst()), (10 ... 20).map(String.init))
    }

    /// A replay that does not fit in the new socket's queue must not leave a silent gap: the
    /// page reads what fitted, the hub sends on, and the page must never get a later frame
    /// while an earlier one is missing (the socket should be aborted with 1013 instead, so
    /// that the page comes back for the rest).
    func testReplayLargerThanTheQueueNeverLeavesAGap() async {
        let hub = Hub(bootID: "b", replayLimit: 100)
        let first = FakeSocket()
        let id = connect(first, session: "page-ten", hub: hub).clientID
        _ = hub.disconnected(id, connection: first.connection, leaving: false)
        for n in 1 ... 20 { hub.send(.text("\(n)"), to: .all) }

        let small = FakeSocket(queueLimit: 10)
        connect(small, session: "page-ten", acknowledged: 0, hub: hub)
        var reader = small.connection.frames.makeAsyncIterator()
        var got: [String] = []
        for _ in 0 ..< 10 {  // the writer drains what fitted: the hello and 9 frames
            if case .text(let text)? = await reader.next(), hello(text) == nil { got.append(text) }
        }
        hub.send(.text("21"), to: .all)
        small.connection.finish()
        while let frame = await reader.next() {
            if case .text(let text) = frame { got.append(text) }
        }
        XCTAssertEqual(got, (1 ... got.count).map(String.init), "frames arrive in sequence, without a gap")
    }

    // MARK: Many clients

    func testManyClientsConnectAndDisconnect() async throws {
        let hub = Hub(bootID: "b", resumeWindow: 0)
        await withTaskGroup(of: Void.self) { group in
            for i in 0 ..< 500 {
                group.addTask {
                    let socket = FakeSocket()
                    let session: String? = i % 3 == 0 ? nil : "many-\(i)"
                    let id = hub.connect(session: session, acknowledged: 0, connection: socket.connection).clientID
                    hub.join(id, room: "lobby")
                    hub.join(id, room: "room-\(i % 7)")
                    hub.send(.text("hi from \(id)"), to: .room("lobby"))
                    _ = hub.disconnected(id, connection: socket.connection, leaving: i % 3 == 1)
                }
            }
        }
        try await Task.sleep(for: .milliseconds(20))
        let expired = hub.expireDroppedClients()
        XCTAssertEqual(expired.count, (0 ..< 500).filter { $0 % 3 == 2 }.count)
        XCTAssertEqual(hub.clientIDs(), [])
        XCTAssertEqual(hub.connectedCount, 0)
        XCTAssertEqual(hub.rooms(of: expired.first ?? ""), [])
        // Rooms were emptied: a new member is alone in the lobby.
        let socket = FakeSocket()
        let id = connect(socket, hub: hub).clientID
        hub.join(id, room: "lobby")
        hub.send(.text("only you"), to: .room("lobby"))
        let texts = await socket.drainTexts()
        XCTAssertEqual(texts, ["only you"])
    }
}

final class ReplayBufferTests: XCTestCase {
    func testFramesAfterAnAcknowledgement() {
        var buffer = ReplayBuffer(limit: 3, maxAge: 10)
        for n in 1 ... 5 { buffer.append(.text("\(n)"), now: Double(n)) }
        XCTAssertEqual(buffer.lastSequence, 5)
        let afterTwo = buffer.frames(after: 2, now: 6)
        XCTAssertEqual(afterTwo.frames, [.text("3"), .text("4"), .text("5")])
        XCTAssertEqual(afterTwo.countBefore, 2)
        let all = buffer.frames(after: 0, now: 6)
        XCTAssertEqual(all.frames, [.text("3"), .text("4"), .text("5")])
        XCTAssertEqual(all.countBefore, 2, "1 and 2 were dropped: the page must count them as had")
        XCTAssertEqual(buffer.frames(after: 5, now: 6).frames, [])
        XCTAssertEqual(buffer.frames(after: 5, now: 6).countBefore, 5)
        let aged = buffer.frames(after: 3, now: 14.5)
        XCTAssertEqual(aged.frames, [.text("5")], "4 is older than maxAge")
        XCTAssertEqual(aged.countBefore, 4)
    }

    func testLongRunsKeepTheNewestFrames() {
        var buffer = ReplayBuffer(limit: 1000, maxAge: 1e9)
        for n in 1 ... 10_000 { buffer.append(.text("\(n)"), now: 0) }
        let tail = buffer.frames(after: 9_990, now: 0)
        XCTAssertEqual(tail.frames, (9_991 ... 10_000).map { .text("\($0)") })
        XCTAssertEqual(tail.countBefore, 9_990)
        let everything = buffer.frames(after: 0, now: 0)
        XCTAssertEqual(everything.frames.count, 1000)
        XCTAssertEqual(everything.frames.first, .text("9001"))
        XCTAssertEqual(everything.countBefore, 9000)
    }
}
