import CLua
import Foundation
import Logging
import LuaBridge
import Synchronization
import WebSocketHub

/// Runs the plugins: joins the Lua runtime (`lua/host.lua`, on the ``LuaExecutor``) to the
/// WebSocket ``Hub``. The HTTP layer calls it only for the hooks some plugin has (see
/// ``summary``); WebSocket events are handed over without waiting for Lua.
///
/// ```swift
/// let host = try await PluginHost.make(executor: executor, hub: hub, logger: logger)
/// let set = try await host.load(entries, searchDirs: ["/project/plugins"])
/// try await host.activate(set, context: start)
/// ```
public final class PluginHost: Sendable {
    public let executor: LuaExecutor
    public let hub: Hub
    private let logger: Logger
    private let runtime: Runtime
    /// Runs the wake-up of the Lua thread for posted WebSocket events, now or a little later
    /// (the server batches a network thread's wake-ups, see `EndOfTick`).
    private let deferWake: @Sendable (@escaping @Sendable () -> Void) -> Void
    private let currentSummary = Mutex(PluginSummary())
    private let watchedFiles = Mutex<Set<String>>([])
    private let inbox = Mutex(Inbox())

    /// The Lua runtime's entry points, kept as references (touched on the Lua thread only).
    struct Runtime: Sendable {
        let load, summary, activate, stop, serve, finish, filesChanged, fireTimer: LuaReference
        let connection, disconnect, message, binary, consoleError: LuaReference
    }

    /// A loaded but not yet running set of plugins.
    public struct PluginSet: Sendable {
        let table: LuaReference
        public let summary: PluginSummary
    }

    public struct LoadError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The folder of the Lua runtime that ships with Lunar.
    static let runtimeFile = ProcessInfo.processInfo.environment["LUNAR_HOME"]
        .map { URL(fileURLWithPath: $0).appendingPathComponent("Sources/PluginHost/lua/host.lua").path }
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("lua/host.lua").path

    private init(executor: LuaExecutor, hub: Hub, logger: Logger, runtime: Runtime, deferWake: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void) {
        self.deferWake = deferWake
        self.executor = executor
        self.hub = hub
        self.logger = logger
        self.runtime = runtime
    }

    /// Loads the runtime into the executor's state and installs the host primitives.
    public static func make(
        executor: LuaExecutor, hub: Hub, logger: Logger,
        deferWake: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void = { $0() }
    ) async throws -> PluginHost {
        let box = HostBox()
        let result: Result<Runtime, LuaError> = await executor.run { lua in
            Result { () throws(LuaError) -> Runtime in
                try lua.load(file: runtimeFile)
                HostPrimitives.push(into: lua, box: box, hub: hub, logger: logger)
                try lua.call(arguments: 1, results: 1)
                func field(_ name: String) -> LuaReference {
                    lua_getfield(lua.L, -1, name)
                    return lua.reference()
                }
                defer { lua.pop() }
                return Runtime(
                    load: field("load"), summary: field("summary"), activate: field("activate"),
                    stop: field("stop"), serve: field("serve"), finish: field("finish"),
                    filesChanged: field("filesChanged"), fireTimer: field("fireTimer"),
                    connection: field("connection"), disconnect: field("disconnect"),
                    message: field("message"), binary: field("binary"), consoleError: field("consoleError")
                )
            }
        }
        let host = PluginHost(executor: executor, hub: hub, logger: logger, runtime: try result.get(), deferWake: deferWake)
        box.host = host
        return host
    }

    public var summary: PluginSummary { currentSummary.withLock { $0 } }

    /// Plugin files and the modules they `require`d: editing one reloads the plugins.
    public var pluginFiles: Set<String> { watchedFiles.withLock { $0 } }

    func watch(_ path: String) {
        let real = realpath(path, nil).map { pointer in defer { free(pointer) }; return String(cString: pointer) }
        _ = watchedFiles.withLock { $0.insert(real ?? URL(fileURLWithPath: path).standardizedFileURL.path) }
    }

    // MARK: Loading

    /// Finds and loads every entry, running each plugin's load-time code; nothing starts yet.
    /// `rootDir`: errors name files under it relative to it.
    public func load(_ entries: [PluginEntry], searchDirs: [String], rootDir: String) async throws(LoadError) -> PluginSet {
        let runtime = self.runtime
        let result: Result<PluginSet, LoadError> = await executor.run { lua in
            let base = lua.top
            defer { lua.top = base }
            lua.push(runtime.load)
            lua_createtable(lua.L, Int32(entries.count), 0)
            for (index, entry) in entries.enumerated() {
                lua_createtable(lua.L, 0, 3)
                lua.push(entry.entry)
                lua_setfield(lua.L, -2, "entry")
                if let options = entry.options {
                    lua.push(options)
                    lua_setfield(lua.L, -2, "options")
                }
                lua.push(entry.baseDir)
                lua_setfield(lua.L, -2, "baseDir")
                lua_rawseti(lua.L, -2, lua_Integer(index + 1))
            }
            lua.push(.array(searchDirs.map { .string($0) }))
            lua.push(rootDir)
            do throws(LuaError) {
                try lua.call(arguments: 3, results: 2)
            } catch {
                return .failure(LoadError(description: error.message + (error.traceback.isEmpty ? "" : "\n" + error.traceback)))
            }
            if lua_type(lua.L, -2) == LUA_TNIL {
                return .failure(LoadError(description: lua.string(at: -1) ?? "plugins failed to load"))
            }
            lua.pop()
            lua.push(runtime.summary)
            lua_pushvalue(lua.L, -2)
            let summaryValue = (try? lua.call(arguments: 1, results: 1)).map { lua.value(at: -1) } ?? .nil
            lua.pop()
            return .success(PluginSet(table: lua.reference(), summary: PluginSummary(summaryValue)))
        }
        return try result.get()
    }

    /// Stops the running plugins (`serverStop`) and starts `set` (`serverStart`).
    public func activate(_ set: PluginSet, context: StartContext) async throws(LoadError) {
        let runtime = self.runtime
        let failure: String? = await executor.run { lua in
            let base = lua.top
            defer { lua.top = base }
            lua.push(runtime.activate)
            lua.push(set.table)
            lua.push(.table(["config": context.config, "rootDir": .string(context.rootDir), "url": .string(context.url)]))
            do throws(LuaError) {
                try lua.call(arguments: 2, results: 2)
            } catch {
                return error.message
            }
            return lua_type(lua.L, -2) == LUA_TNIL ? (lua.string(at: -1) ?? "serverStart failed") : nil
        }
        if let failure { throw LoadError(description: failure) }
        currentSummary.withLock { $0 = set.summary }
    }

    /// Runs every `serverStop` and cancels the plugins' timers and handlers.
    public func stop() async {
        let runtime = self.runtime
        currentSummary.withLock { $0 = PluginSummary() }
        await executor.run { lua in _ = try? lua.call(runtime.stop) }
    }

    // MARK: HTTP hooks

    public func serve(_ request: HookRequest) async -> ServeOutcome {
        let runtime = self.runtime
        return await executor.run { lua in
            let base = lua.top
            defer { lua.top = base }
            lua.push(runtime.serve)
            Self.push(request, into: lua)
            do throws(LuaError) {
                try lua.call(arguments: 1, results: 4)
            } catch {
                return .failed(error.message)
            }
            switch lua_type(lua.L, -4) {
            case LUA_TNIL: return .notServed
            case LUA_TBOOLEAN: return .failed(lua.string(at: -3) ?? "serve failed")
            default:
                let status = Int(lua_tointegerx(lua.L, -2, nil))
                return .served(PluginResponse(
                    status: status == 0 ? 200 : status,
                    type: lua.string(at: -3),
                    body: lua.bytes(at: -4) ?? [],
                    headers: Self.stringTable(lua.value(at: -1))
                ))
            }
        }
    }

    /// Runs `transform` (when `transform`) and `resolveMimeType` (when `resolve`) on a body.
    public func finish(_ request: HookRequest, status: Int, body: [UInt8], type: String, transform: Bool, resolve: Bool) async -> FinishOutcome {
        let runtime = self.runtime
        return await executor.run { lua in
            let base = lua.top
            defer { lua.top = base }
            lua.push(runtime.finish)
            Self.push(request, into: lua)
            lua.push(bytes: body)
            lua_setfield(lua.L, -2, "body")
            lua.push(type)
            lua_setfield(lua.L, -2, "type")
            lua_pushinteger(lua.L, lua_Integer(status))
            lua_setfield(lua.L, -2, "status")
            lua_pushboolean(lua.L, transform ? 1 : 0)
            lua_pushboolean(lua.L, resolve ? 1 : 0)
            do throws(LuaError) {
                try lua.call(arguments: 3, results: 3)
            } catch {
                return .failed(error.message)
            }
            if lua_type(lua.L, -3) == LUA_TBOOLEAN {
                return .failed(lua.string(at: -2) ?? "transform failed")
            }
            return .finished(body: lua.bytes(at: -3) ?? body, headers: Self.stringTable(lua.value(at: -2)), type: lua.string(at: -1))
        }
    }

    private static func push(_ request: HookRequest, into lua: LuaState) {
        lua_createtable(lua.L, 0, 8)
        for (key, value) in [("method", request.method), ("path", request.path), ("url", request.url)] {
            lua.push(value)
            lua_setfield(lua.L, -2, key)
        }
        for (key, map) in [("query", request.query), ("headers", request.headers)] {
            lua_createtable(lua.L, 0, Int32(map.count))
            for (name, value) in map {
                lua.push(value)
                lua_setfield(lua.L, -2, name)
            }
            lua_setfield(lua.L, -2, key)
        }
    }

    private static func stringTable(_ value: LuaValue) -> [String: String] {
        guard case .table(let fields) = value else { return [:] }
        return fields.compactMapValues(\.string)
    }

    // MARK: Watching

    /// One changed file as `fileChanged` sees it.
    public struct FileEvent: Sendable {
        /// The URL path, with its leading `/`.
        public let path: String
        /// Absolute.
        public let file: String
        /// "add", "change" or "unlink".
        public let kind: String

        public init(path: String, file: String, kind: String) {
            self.path = path
            self.file = file
            self.kind = kind
        }
    }

    /// Gives a batch of changes to the `fileChanged` hooks, and what they leave to the `reload`
    /// hooks; returns how many changes a `fileChanged` hook handled.
    @discardableResult
    public func filesChanged(_ events: [FileEvent]) async -> Int {
        let runtime = self.runtime
        return await executor.run { lua in
            let list = LuaValue.array(events.map {
                .table(["path": .string($0.path), "file": .string($0.file), "kind": .string($0.kind)])
            })
            if case .integer(let handled) = (try? lua.call(runtime.filesChanged, [list]))?.first { return Int(handled) }
            return 0
        }
    }

    /// Logs `text` in every open page's console with `console.error`.
    public func consoleError(_ text: String) {
        let runtime = self.runtime
        executor.submit { lua in _ = try? lua.call(runtime.consoleError, [.string(text)]) }
    }

    // MARK: WebSocket events (not awaited: the network never waits for Lua here)

    public func connected(_ clientID: String) { post(.connected(clientID)) }

    public func disconnected(_ clientID: String) { post(.disconnected(clientID)) }

    public func received(text: String, from clientID: String) { post(.text(clientID, text)) }

    public func received(binary: [UInt8], from clientID: String) { post(.binary(clientID, binary)) }

    /// Runs `body` once the WebSocket events posted before it were handled (e.g. to close a
    /// socket only after the answers to its earlier messages went out).
    public func afterEvents(_ body: @escaping @Sendable () -> Void) { post(.then(body)) }

    /// A WebSocket event on its way to the Lua thread.
    enum SocketEvent: Sendable {
        case connected(String), disconnected(String), text(String, String), binary(String, [UInt8])
        case then(@Sendable () -> Void)
    }

    /// Events wait here in arrival order; the Lua thread takes them in batches, so a busy
    /// channel costs one hop to the Lua thread per batch, not per message.
    private struct Inbox {
        var events: [SocketEvent] = []
        var drainScheduled = false
    }

    private func post(_ event: SocketEvent) {
        let schedule = inbox.withLock { inbox -> Bool in
            inbox.events.append(event)
            guard !inbox.drainScheduled else { return false }
            inbox.drainScheduled = true
            return true
        }
        if schedule { deferWake { self.executor.submit { lua in self.drainInbox(lua) } } }
    }

    /// Handles the events waiting now; what arrives meanwhile waits for the next turn, so timers
    /// and hooks queued on the Lua thread are not starved.
    private func drainInbox(_ lua: LuaState) {
        let batch = inbox.withLock { inbox -> [SocketEvent] in
            defer { inbox.events.removeAll(keepingCapacity: true) }
            return inbox.events
        }
        for event in batch { dispatch(event, lua) }
        let more = inbox.withLock { inbox -> Bool in
            inbox.drainScheduled = !inbox.events.isEmpty
            return inbox.drainScheduled
        }
        if more { executor.submit { lua in self.drainInbox(lua) } }
    }

    private func dispatch(_ event: SocketEvent, _ lua: LuaState) {
        let base = lua.top
        defer { lua.top = base }
        switch event {
        case .connected(let id):
            lua.push(runtime.connection)
            lua.push(id)
            lua_pushnil(lua.L)
        case .disconnected(let id):
            lua.push(runtime.disconnect)
            lua.push(id)
            lua_pushnil(lua.L)
        case .text(let id, let text):
            lua.push(runtime.message)
            lua.push(id)
            lua.push(text)
        case .binary(let id, let bytes):
            lua.push(runtime.binary)
            lua.push(id)
            lua.push(bytes: bytes)
        case .then(let body):
            body()
            return
        }
        do throws(LuaError) { try lua.call(arguments: 2, results: 0) } catch { logger.error("\(error.message)") }
    }

    // MARK: Timers

    func startTimer(_ id: Int64, milliseconds: Int) {
        let runtime = self.runtime
        executor.submit(after: milliseconds) { [weak self] lua in
            guard let self else { return }
            let period = (try? lua.call(runtime.fireTimer, [.integer(id)]))?.first
            if case .integer(let next) = period { self.startTimer(id, milliseconds: Int(next)) }
        }
    }

    func report(_ text: String) {
        logger.error("\(text)")
    }
}

/// Lets the primitives reach the host, which exists only after the runtime loaded.
final class HostBox: @unchecked Sendable {
    weak var host: PluginHost?
}

extension PluginSummary {
    init(_ value: LuaValue) {
        self.init()
        guard case .table(let fields) = value else { return }
        func flag(_ name: String) -> Bool { fields[name] == .boolean(true) }
        func list(_ name: String) -> [String] {
            if case .array(let items) = fields[name] { return items.compactMap(\.string) }
            return []
        }
        names = list("names")
        files = list("files")
        serve = flag("serve")
        transform = flag("transform")
        resolveMimeType = flag("resolveMimeType")
        fileChanged = flag("fileChanged")
        reload = flag("reload")
        injectWebSocket = flag("injectWebSocket")
    }
}
