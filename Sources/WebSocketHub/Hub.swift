import Foundation
import Logging
import Synchronization

/// Every WebSocket client of the server: ids, rooms, broadcast, and the replay that lets a
/// page that lost its socket get, after reconnecting, exactly the frames it missed.
///
/// A client is the page, not the socket: a page that identifies itself with a session id keeps
/// its id, rooms and pending frames for `resumeWindow` seconds after its socket drops. The hub
/// knows nothing of Lua; the plugin host drives it through these methods.
///
/// ```swift
/// let hub = Hub(bootID: "b1")
/// let joined = hub.connect(session: nil, acknowledged: 0, connection: connection)
/// hub.send(.text("hi"), to: .all)
/// ```
public final class Hub: Sendable {
    /// Who a frame goes to.
    public enum Target: Sendable, Hashable {
        case all
        case client(String)
        case room(String)
        case allExcept(String)
    }

    public struct Joined: Sendable {
        public let clientID: String
        /// True when an earlier client of the same page was resumed (no new `connection` event).
        public let resumed: Bool
    }

    struct Client {
        let id: String
        let session: String?
        var connection: ClientConnection?
        var rooms: Set<String> = []
        var replay: ReplayBuffer?
        var droppedAt: Double = 0
        /// Closed by the server: gone for good when its socket ends.
        var closing = false
    }

    struct State {
        var clients: [String: Client] = [:]
        var sessions: [String: String] = [:]
        var rooms: [String: Set<String>] = [:]
        var nextID = 1
    }

    public let bootID: String
    public let resumeWindow: Double
    public let replayLimit: Int
    private let state = Mutex(State())
    private let logger: Logger

    public init(bootID: String, resumeWindow: Double = 120, replayLimit: Int = 1000, logger: Logger = Logger(label: "lunar.hub")) {
        self.bootID = bootID
        self.resumeWindow = resumeWindow
        self.replayLimit = replayLimit
        self.logger = logger
    }

    private static func now() -> Double { ProcessInfo.processInfo.systemUptime }

    // MARK: Connections

    /// Registers a new socket. A page that sends its `session` gets the Lunar hello first and,
    /// when its session is still known, the frames after `acknowledged` that it missed.
    public func connect(session: String?, acknowledged: UInt64, connection: ClientConnection) -> Joined {
        let now = Self.now()
        return state.withLock { state in
            if let session, let id = state.sessions[session], var client = state.clients[id] {
                client.connection?.abort(code: CloseCode.policyViolation, reason: "replaced by a newer connection of the same page")
                client.connection = connection
                let missed = client.replay?.frames(after: acknowledged, now: now) ?? (frames: [], countBefore: acknowledged)
                if missed.countBefore > acknowledged {
                    logger.warning("client \(id) reconnected after \(missed.countBefore - acknowledged) frames were dropped from its replay buffer")
                }
                _ = connection.enqueue(.text(hello(session: session, resumed: true, count: missed.countBefore)))
                state.clients[id] = client
                for frame in missed.frames where !connection.enqueue(frame) {
                    // A gap would break the page's count: cut it off, it comes back with its real count.
                    state.clients[id]!.connection = nil
                    state.clients[id]!.droppedAt = now
                    connection.abort(code: CloseCode.tryAgainLater, reason: "too much to replay at once")
                    break
                }
                return Joined(clientID: id, resumed: true)
            }
            let id = "c\(state.nextID)"
            state.nextID += 1
            var client = Client(id: id, session: session, connection: connection)
            if let session {
                client.replay = ReplayBuffer(limit: replayLimit, maxAge: resumeWindow)
                state.sessions[session] = id
                _ = connection.enqueue(.text(hello(session: session, resumed: false, count: 0)))
            }
            state.clients[id] = client
            return Joined(clientID: id, resumed: false)
        }
    }

    /// `count`: how many frames the page has had before the ones that follow the hello.
    private func hello(session: String, resumed: Bool, count: UInt64) -> String {
        #"{"type":"lunar:hello","boot":"\#(bootID)","session":"\#(session)","resumed":\#(resumed),"count":\#(count)}"#
    }

    /// The socket of `clientID` ended. A resumable page that did not leave for good
    /// (`goingAway`) is kept for `resumeWindow`; returns true when the client is gone now.
    public func disconnected(_ clientID: String, connection: ClientConnection, leaving: Bool) -> Bool {
        let now = Self.now()
        return state.withLock { state in
            guard var client = state.clients[clientID] else { return false }
            // A newer socket of the same page took over: this one's end changes nothing.
            if let current = client.connection, current !== connection { return false }
            client.connection = nil
            if client.replay != nil, !leaving, !client.closing {
                client.droppedAt = now
                state.clients[clientID] = client
                return false
            }
            remove(clientID, from: &state)
            return true
        }
    }

    /// Forgets the pages whose socket has been down longer than `resumeWindow`; returns their ids.
    public func expireDroppedClients() -> [String] {
        let now = Self.now()
        return state.withLock { state in
            let expired = state.clients.values.filter { $0.connection == nil && now - $0.droppedAt > resumeWindow }.map(\.id)
            for id in expired { remove(id, from: &state) }
            return expired
        }
    }

    private func remove(_ clientID: String, from state: inout State) {
        guard let client = state.clients.removeValue(forKey: clientID) else { return }
        if let session = client.session { state.sessions[session] = nil }
        for room in client.rooms {
            state.rooms[room]?.remove(clientID)
            if state.rooms[room]?.isEmpty == true { state.rooms[room] = nil }
        }
    }

    // MARK: Sending

    /// Queues `frame` for every client in `target`, connected or waiting to resume.
    public func send(_ frame: OutboundFrame, to target: Target) {
        let now = Self.now()
        state.withLock { state in
            switch target {
            case .all:
                for id in state.clients.keys { deliver(frame, to: id, in: &state, now: now) }
            case .client(let id):
                deliver(frame, to: id, in: &state, now: now)
            case .room(let room):
                for id in state.rooms[room] ?? [] { deliver(frame, to: id, in: &state, now: now) }
            case .allExcept(let excluded):
                for id in state.clients.keys where id != excluded { deliver(frame, to: id, in: &state, now: now) }
            }
        }
    }

    private func deliver(_ frame: OutboundFrame, to id: String, in state: inout State, now: Double) {
        guard state.clients[id] != nil else { return }
        state.clients[id]!.replay?.append(frame, now: now)
        guard let connection = state.clients[id]!.connection else { return }
        if !connection.enqueue(frame) {
            logger.warning("client \(id) is not reading: its outbound queue is full, closing it")
            state.clients[id]!.connection = nil
            state.clients[id]!.droppedAt = now
            connection.abort(code: CloseCode.tryAgainLater, reason: "outbound queue full: the page is not reading")
        }
    }

    /// Closes the socket of `clientID` after the frames queued before; the client is gone for good.
    /// Returns true when the client was waiting to resume and is gone at once.
    @discardableResult
    public func close(_ clientID: String, code: UInt16, reason: String) -> Bool {
        state.withLock { state in
            guard let client = state.clients[clientID] else { return false }
            guard let connection = client.connection else {
                remove(clientID, from: &state)
                return true
            }
            state.clients[clientID]!.closing = true
            _ = connection.enqueue(.close(code: code, reason: reason))
            connection.finish()
            return false
        }
    }

    // MARK: Rooms and listing

    public func join(_ clientID: String, room: String) {
        state.withLock { state in
            guard state.clients[clientID] != nil else { return }
            state.clients[clientID]!.rooms.insert(room)
            state.rooms[room, default: []].insert(clientID)
        }
    }

    public func leave(_ clientID: String, room: String) {
        state.withLock { state in
            state.clients[clientID]?.rooms.remove(room)
            state.rooms[room]?.remove(clientID)
            if state.rooms[room]?.isEmpty == true { state.rooms[room] = nil }
        }
    }

    /// The rooms `clientID` joined, sorted.
    public func rooms(of clientID: String) -> [String] {
        state.withLock { $0.clients[clientID]?.rooms.sorted() ?? [] }
    }

    /// Ids of every client, connected or waiting to resume, in the order they first connected.
    public func clientIDs() -> [String] {
        state.withLock { state in
            state.clients.keys.sorted { (Int($0.dropFirst()) ?? 0) < (Int($1.dropFirst()) ?? 0) }
        }
    }

    public var connectedCount: Int {
        state.withLock { $0.clients.values.filter { $0.connection != nil }.count }
    }

    public func isConnected(_ clientID: String) -> Bool {
        state.withLock { $0.clients[clientID] != nil }
    }

    /// Closes every socket with `code` (server shutdown).
    public func closeAll(code: UInt16, reason: String) {
        state.withLock { state in
            for client in state.clients.values {
                _ = client.connection?.enqueue(.close(code: code, reason: reason))
                client.connection?.finish()
            }
        }
    }
}
