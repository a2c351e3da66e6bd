import Foundation
import Hummingbird
import HummingbirdWSCompression
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import LuaBridge
import NIOCore
import PluginHost
import Synchronization
import WebSocketHub

/// A running Lunar: the HTTP and WebSocket server, the plugins and the watcher.
///
/// ```swift
/// let options = CommandLineOptions(root: "examples/hello")
/// exit(await LunarServer.run(options))
/// ```
public final class LunarServer: Sendable {
    let config: LunarConfig
    let options: CommandLineOptions
    let executor: LuaExecutor
    let hub: Hub
    let host: PluginHost
    let store: FileStore
    let logger: Logger
    /// What a plugin reload may change, and what it needs: the config as last read, the URL.
    let live: Mutex<LiveState>

    struct LiveState {
        var config: LunarConfig
        /// The config's `ignore` globs, compiled.
        var ignoreGlobs: [Glob]
        var url = ""
        /// Folders outside the root watched because plugins or the config live there.
        var watchedOutside: Set<String> = []
        /// Watches the folders of plugins added since (set once watching started).
        var rewatch: (@Sendable () -> Void)?
    }

    /// The Lunar install: the bundled plugins and the browser client live beside the sources.
    /// `LUNAR_HOME` (a copy of the repository's tree) wins, for a binary moved elsewhere.
    static let installRoot = ProcessInfo.processInfo.environment["LUNAR_HOME"].map { URL(fileURLWithPath: $0) }
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let bundledPlugins = installRoot.appendingPathComponent("plugins").path
    static let clientFile = installRoot.appendingPathComponent("Sources/LunarServer/Client/web-socket.js").path

    private init(config: LunarConfig, options: CommandLineOptions, executor: LuaExecutor, hub: Hub, host: PluginHost, logger: Logger) {
        self.config = config
        self.options = options
        self.executor = executor
        self.hub = hub
        self.host = host
        self.store = FileStore(root: config.rootDir)
        self.logger = logger
        self.live = Mutex(LiveState(config: config, ignoreGlobs: config.ignore.map(Glob.init)))
    }

    /// Runs until SIGINT or SIGTERM; returns the exit status. Prints one clear message and
    /// returns non-zero for a user's mistake.
    public static func run(_ options: CommandLineOptions) async -> Int32 {
        let logger = TerminalLog.logger(level: options.logLevel)
        do {
            let server = try await start(options, logger: logger)
            return await server.serve()
        } catch let error as ConfigError {
            TerminalLog.fail(error.description)
        } catch let error as PluginHost.LoadError {
            TerminalLog.fail(error.description)
        } catch {
            TerminalLog.fail("\(error)")
        }
        return 1
    }

    /// Reads the config, loads the plugins; nothing listens yet.
    static func start(_ options: CommandLineOptions, logger: Logger) async throws -> LunarServer {
        let workingDirectory = FileManager.default.currentDirectoryPath
        let rootArgument = options.root.map { Paths.absolute($0, from: workingDirectory) }
        let lua = try LuaState()
        let executor = LuaExecutor(state: lua)
        var config = try loadConfig(options, rootArgument: rootArgument, workingDirectory: workingDirectory, executor: executor)
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: config.rootDir, isDirectory: &isFolder), isFolder.boolValue else {
            throw ConfigError("the root folder \(config.rootDir) does not exist")
        }
        config.rootDir = FileStore.realPath(config.rootDir) ?? config.rootDir
        let limits = (config.memoryLimit, config.timeout)
        executor.runBlocking { lua in
            lua.memoryLimit = limits.0
            lua.budgetMilliseconds = limits.1
        }
        let hub = Hub(bootID: String(UInt64.random(in: 1 ... UInt64.max), radix: 36), logger: logger)
        let host = try await PluginHost.make(executor: executor, hub: hub, logger: logger, deferWake: EndOfTick.run)
        return LunarServer(config: config, options: options, executor: executor, hub: hub, host: host, logger: logger)
    }

    /// The config file (if any) with the command line on top.
    static func loadConfig(_ options: CommandLineOptions, rootArgument: String?, workingDirectory: String, executor: LuaExecutor) throws -> LunarConfig {
        var config = LunarConfig(rootDir: rootArgument ?? workingDirectory)
        let file: String? = options.config.map { Paths.absolute($0, from: workingDirectory) }
            ?? [config.rootDir + "/lunar.config.lua"].first { FileManager.default.fileExists(atPath: $0) }
        if let given = file {
            guard FileManager.default.isReadableFile(atPath: given) else { throw ConfigError("cannot read the config file \(given)") }
            let file = FileStore.realPath(given) ?? given
            let base = config
            config = try executor.runBlocking { lua in
                Result { () throws(ConfigError) -> LunarConfig in
                    var read = base
                    try read.apply(file: file, lua: lua)
                    return read
                }
            }.get()
        }
        if let rootArgument { config.rootDir = rootArgument }
        if let port = options.port {
            config.port = port
            config.portIsExplicit = true
        }
        if let host = options.host { config.hostname = host }
        if let appIndex = options.appIndex { config.appIndex = appIndex }
        if options.noWatch { config.watch = false }
        config.plugins += commandLinePlugins(options)
        return config
    }

    /// `--plugin PATH` entries, relative to the working directory.
    static func commandLinePlugins(_ options: CommandLineOptions) -> [PluginEntry] {
        let workingDirectory = FileManager.default.currentDirectoryPath
        return options.plugins.map {
            PluginEntry(entry: .string($0.contains("/") ? $0 : "./" + $0), options: nil, baseDir: workingDirectory)
        }
    }

    /// The plugin entries to load: the configured ones, plus `live-reload` when watching and
    /// the config does not list it itself.
    static func entries(_ config: LunarConfig) -> [PluginEntry] {
        let listsLiveReload = config.plugins.contains { $0.entry == .string("live-reload") }
        guard config.watch, !listsLiveReload else { return config.plugins }
        return config.plugins + [PluginEntry(entry: .string("live-reload"), options: nil, baseDir: config.rootDir)]
    }

    static func searchDirs(_ config: LunarConfig) -> [String] {
        var dirs = [config.rootDir + "/plugins"] + config.pluginPaths
        if let extra = ProcessInfo.processInfo.environment["LUNAR_PLUGIN_PATH"] {
            dirs += extra.split(separator: ":").map { Paths.absolute(String($0), from: FileManager.default.currentDirectoryPath) }
        }
        return dirs + [Self.bundledPlugins]
    }

    // MARK: Serving

    private func serve() async -> Int32 {
        let set: PluginHost.PluginSet
        do {
            set = try await host.load(Self.entries(config), searchDirs: Self.searchDirs(config), rootDir: config.rootDir)
        } catch {
            TerminalLog.fail(error.description)
            return 1
        }
        guard let clientData = FileManager.default.contents(atPath: Self.clientFile) else {
            TerminalLog.fail("the browser client \(Self.clientFile) is missing: is the Lunar install complete?")
            return 1
        }
        let (port, portNote): (Int, String?)
        do {
            (port, portNote) = try PortFinder.choose(config.port, explicit: config.portIsExplicit, host: config.hostname)
        } catch {
            TerminalLog.fail(error.description)
            return 1
        }

        let policy = OriginPolicy(hostname: config.hostname)
        let pipeline = RequestPipeline(
            host: host, store: store, policy: policy,
            appIndex: config.appIndex.flatMap { try? RequestPath(target: "/" + $0).segments },
            injectionAllowed: config.injectWebSocket, clientModule: ByteBuffer(bytes: clientData)
        )
        let endpoint = WebSocketEndpoint(hub: hub, host: host, policy: policy, maxMessageSize: config.maxMessageSize, logger: logger)
        // Frames up to 4× the limit are read, so the endpoint refuses the message with a reason;
        // a longer frame is refused as it arrives (FrameTooLargeResponder gives the reason). A
        // compressed frame is inflated up to 16 MiB (or 4× the limit); past that the WebSocket
        // library stops inflating and closes with 1011 (its close, no reason): memory stays bounded.
        let maxFrameSize = min(Int(UInt32.max >> 1), config.maxMessageSize * 4)
        let inflateLimit = max(16 << 20, maxFrameSize)
        let webSocketConfiguration = WebSocketServerConfiguration(
            maxFrameSize: maxFrameSize,
            extensions: [.perMessageDeflate(maxDecompressedFrameSize: inflateLimit)],
            autoPing: .enabled(timePeriod: .seconds(30)),
            validateUTF8: true
        )
        let app = Application(
            responder: CallbackResponder<BasicRequestContext> { request, _ in await pipeline.respond(to: request) },
            server: HTTPServerBuilder { responder in
                let child = LunarChildChannel(
                    inner: HTTP1WebSocketUpgradeChannel(
                        responder: responder,
                        configuration: .init(http1: .init(idleTimeout: nil), ws: webSocketConfiguration)  // StaticFileFastPath keeps it
                    ) { request, channel, _ in
                        endpoint.shouldUpgrade(request, channel: channel)
                    },
                    fastPath: { [host = self.host] in StaticFileFastPath(pipeline: pipeline, summary: { host.summary }) }
                )
                child.warmUp()
                return child
            },
            configuration: .init(address: .hostname(config.hostname, port: port), serverName: nil),
            onServerRunning: { channel in
                await self.listening(on: channel.localAddress?.port ?? port, set: set, portNote: portNote)
            },
            eventLoopGroupProvider: .shared(EventLoops.group),
            logger: Logger(label: "lunar.http", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        let shutdown = ShutdownSignal()
        shutdown.install { await self.stop() }
        startExpirySweep()
        do {
            try await app.runService(gracefulShutdownSignals: [])
        } catch {
            TerminalLog.fail("cannot listen on \(config.hostname):\(port): \(error)")
            return 1
        }
        return 0
    }

    private func listening(on port: Int, set: PluginHost.PluginSet, portNote: String?) async {
        let displayHost = config.hostname.contains(":") ? "[\(config.hostname)]" : config.hostname
        let url = "http://\(displayHost):\(port)/"
        live.withLock { $0.url = url }
        do {
            try await host.activate(set, context: StartContext(config: config.raw, rootDir: config.rootDir, url: url))
        } catch {
            // The plugin's error is already in the terminal, with its traceback.
            TerminalLog.fail("start-up stopped: a plugin's serverStart failed")
            exit(1)
        }
        var banner = "\nLunar is serving \(url)\n  root    \(config.rootDir)\n"
        if let portNote { banner += "  note    \(portNote)\n" }
        if let file = config.configFile { banner += "  config  \(file)\n" }
        let summary = set.summary
        if summary.names.isEmpty { banner += "  plugins none\n" }
        for (index, name) in summary.names.enumerated() {
            banner += "  \(index == 0 ? "plugins" : "       ") \(name) (\(summary.files[index]))\n"
        }
        FileHandle.standardOutput.write(Data(banner.utf8))
        if config.watch { startWatching() }
        if let open = options.open { Browser.open(url + open.drop { $0 == "/" }) }
    }

    private func stop() async {
        hub.closeAll(code: CloseCode.goingAway, reason: "server shutting down")
        await host.stop()
        try? await Task.sleep(for: .milliseconds(100))
        FileHandle.standardOutput.write(Data("Lunar stopped.\n".utf8))
        exit(0)
    }

    private func startExpirySweep() {
        let hub = self.hub
        let host = self.host
        Task.detached {
            while true {
                try? await Task.sleep(for: .seconds(1))
                for id in hub.expireDroppedClients() { host.disconnected(id) }
            }
        }
    }
}
