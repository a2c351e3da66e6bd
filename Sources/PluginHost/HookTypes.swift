import LuaBridge

/// What the HTTP layer tells the plugins about a request (SPEC §3 `ctx`).
public struct HookRequest: Sendable {
    public var method: String
    /// Decoded path, without the query.
    public var path: String
    /// Path and query as requested.
    public var url: String
    public var query: [String: String]
    /// Lower-case names.
    public var headers: [String: String]

    public init(method: String, path: String, url: String, query: [String: String], headers: [String: String]) {
        self.method = method
        self.path = path
        self.url = url
        self.query = query
        self.headers = headers
    }
}

/// A response a plugin's `serve` hook gave.
public struct PluginResponse: Sendable {
    public var status: Int
    /// An extension ("js") or a MIME type, as the plugin said it; nil: from the path.
    public var type: String?
    public var body: [UInt8]
    public var headers: [String: String]
}

public enum ServeOutcome: Sendable {
    case notServed
    case served(PluginResponse)
    /// A hook failed; the message names the plugin, file and line.
    case failed(String)
}

public enum FinishOutcome: Sendable {
    /// The body after every `transform`, headers to add, and the `resolveMimeType` answer.
    case finished(body: [UInt8], headers: [String: String], type: String?)
    case failed(String)
}

/// Which hooks the loaded plugins have, so requests that need none never enter Lua.
public struct PluginSummary: Sendable, Equatable {
    public var names: [String] = []
    public var files: [String] = []
    public var serve = false
    public var transform = false
    public var resolveMimeType = false
    public var fileChanged = false
    public var reload = false
    public var injectWebSocket = false

    public init() {}
}

/// One `plugins` entry: a name, a path or an inline plugin table, its options, and the folder
/// relative paths start from.
public struct PluginEntry: Sendable {
    public var entry: LuaValue
    public var options: LuaValue?
    public var baseDir: String

    public init(entry: LuaValue, options: LuaValue?, baseDir: String) {
        self.entry = entry
        self.options = options
        self.baseDir = baseDir
    }
}


/// What `serverStart` receives besides `webSockets`.
public struct StartContext: Sendable {
    public var config: LuaValue
    public var rootDir: String
    public var url: String

    public init(config: LuaValue, rootDir: String, url: String) {
        self.config = config
        self.rootDir = rootDir
        self.url = url
    }
}
