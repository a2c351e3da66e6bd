import Foundation
import LuaBridge
import PluginHost

/// Everything that shapes a run: `lunar.config.lua` (SPEC §2) with the command line on top.
public struct LunarConfig: Sendable {
    public var rootDir: String
    public var port: Int = 8000
    /// True when the port came from the config or a flag: then a taken port is an error,
    /// not a reason to try the next one.
    public var portIsExplicit = false
    public var hostname = "127.0.0.1"
    public var watch = true
    public var appIndex: String?
    public var injectWebSocket = true
    public var pluginPaths: [String] = []
    public var ignore: [String] = []
    public var timeout = 1000
    public var maxMessageSize = 1_048_576
    /// Bytes the Lua state may allocate (Lunar's addition; 0: no cap).
    public var memoryLimit = 512 * 1_048_576
    /// The config's `plugins`, then the `--plugin` paths.
    public var plugins: [PluginEntry] = []
    /// The config file that was read, if any.
    public var configFile: String?
    /// The config table as Lua returned it, for `ctx.config`.
    public var raw: LuaValue = .table([:])

    public init(rootDir: String) {
        self.rootDir = rootDir
    }
}

/// A mistake in the config or on the command line, worded for the user.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension LunarConfig {
    static let knownKeys: Set<String> = [
        "rootDir", "port", "hostname", "watch", "appIndex", "injectWebSocket", "pluginPaths",
        "ignore", "timeout", "maxMessageSize", "memoryLimit", "plugins",
    ]

    /// Reads `file` (a Lua chunk returning a table) on top of `self`. Relative paths in it are
    /// relative to the file's folder, except `appIndex` and `ignore` (relative to the root).
    mutating func apply(file: String, lua: LuaState) throws(ConfigError) {
        let base = lua.top
        defer { lua.top = base }
        let values: [LuaValue]
        // Loaded under its short name (Lua cuts long chunk names); messages get the full path back.
        let shortName = (file as NSString).lastPathComponent
        do throws(LuaError) {
            guard let source = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw LuaError(kind: .file, message: "cannot read the config file \(file)")
            }
            try lua.load(source, name: "@" + shortName)
            try lua.call(arguments: 0, results: 1)
            values = [lua.value(at: -1)]
        } catch {
            let message = error.message.hasPrefix(shortName + ":") ? file + error.message.dropFirst(shortName.count) : error.message
            throw ConfigError(message)
        }
        let fields: [String: LuaValue]
        switch values.first ?? .nil {
        case .table(let table): fields = table
        case .array(let items) where items.isEmpty: fields = [:]
        case let other: throw ConfigError("\(file): the config must return a table, got \(other.typeName)")
        }
        configFile = file
        raw = .table(fields.filter { $0.key != "plugins" })
        let folder = URL(fileURLWithPath: file).deletingLastPathComponent().path

        func fail(_ key: String, _ expected: String) -> ConfigError {
            ConfigError("\(file): config key `\(key)` must be \(expected), got \(fields[key]!.typeName)")
        }
        func string(_ key: String) throws(ConfigError) -> String? {
            guard let value = fields[key] else { return nil }
            guard case .string(let s) = value else { throw fail(key, "a string") }
            return s
        }
        func integer(_ key: String, _ range: ClosedRange<Int>) throws(ConfigError) -> Int? {
            guard let value = fields[key] else { return nil }
            guard case .integer(let i) = value, range.contains(Int(i)) else {
                throw fail(key, "an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return Int(i)
        }
        func boolean(_ key: String) throws(ConfigError) -> Bool? {
            guard let value = fields[key] else { return nil }
            guard case .boolean(let b) = value else { throw fail(key, "true or false") }
            return b
        }
        func strings(_ key: String) throws(ConfigError) -> [String]? {
            guard let value = fields[key] else { return nil }
            switch value {
            case .array(let items):
                var result: [String] = []
                for item in items {
                    guard case .string(let s) = item else { throw fail(key, "a list of strings") }
                    result.append(s)
                }
                return result
            case .table(let t) where t.isEmpty: return []
            default: throw fail(key, "a list of strings")
            }
        }

        for key in fields.keys.sorted() where !Self.knownKeys.contains(key) {
            throw ConfigError("\(file): unknown config key `\(key)` (known keys: \(Self.knownKeys.sorted().joined(separator: ", ")))")
        }
        if let root = try string("rootDir") { rootDir = Paths.absolute(root, from: folder) }
        if let port = try integer("port", 0 ... 65535) {
            self.port = port
            portIsExplicit = true
        }
        if let host = try string("hostname") { hostname = host }
        if let watch = try boolean("watch") { self.watch = watch }
        if let index = try string("appIndex") { appIndex = index }
        if let inject = try boolean("injectWebSocket") { injectWebSocket = inject }
        if let paths = try strings("pluginPaths") { pluginPaths = paths.map { Paths.absolute($0, from: folder) } }
        if let globs = try strings("ignore") { ignore = globs }
        if let timeout = try integer("timeout", 1 ... 3_600_000) { self.timeout = timeout }
        if let size = try integer("maxMessageSize", 1 ... 1 << 30) { maxMessageSize = size }
        if let limit = try integer("memoryLimit", 0 ... Int.max) { memoryLimit = limit }
        if let value = fields["plugins"] {
            let items: [LuaValue]
            switch value {
            case .array(let list): items = list
            case .table(let t) where t.isEmpty: items = []
            default: throw fail("plugins", "a list")
            }
            plugins = try items.enumerated().map { (index, item) throws(ConfigError) in
                switch item {
                case .string: return PluginEntry(entry: item, options: nil, baseDir: folder)
                case .array(let pair) where (1 ... 2).contains(pair.count):
                    return PluginEntry(entry: pair[0], options: pair.count == 2 ? pair[1] : nil, baseDir: folder)
                case .table(let t) where t["name"] != nil:
                    return PluginEntry(entry: item, options: nil, baseDir: folder)
                default:
                    throw ConfigError("\(file): plugins[\(index + 1)] must be a name, a path, { entry, options } or a plugin table with a `name`")
                }
            }
        }
    }
}

enum Paths {
    static func absolute(_ path: String, from folder: String) -> String {
        let joined = path.hasPrefix("/") ? path : folder + "/" + path
        return URL(fileURLWithPath: joined).standardizedFileURL.path
    }
}
