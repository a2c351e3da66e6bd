import Foundation
import PluginHost

extension LunarServer {
    /// Watches the root (SPEC §5) and the plugins' own files: a change to a served file goes
    /// to the plugins (`fileChanged`, then live-reload); a change to a plugin, a module it
    /// required or the config reloads the plugins without a restart. Batches are handled one
    /// at a time, in order.
    func startWatching() {
        let root = config.rootDir
        // Lunar's own output, when redirected into the project, must not reload pages forever.
        let ownOutput = Set(["/proc/self/fd/1", "/proc/self/fd/2"].compactMap(FileStore.realPath))
        // The config's globs as last read: a config edit changes them without a restart.
        let ignored: @Sendable (String) -> Bool = { [self] relative in
            let parts = relative.split(separator: "/")
            return parts.first == ".git" || parts.contains("node_modules")
                || live.withLock { $0.ignoreGlobs }.contains { $0.matches(relative) } || ownOutput.contains(root + "/" + relative)
        }
        let (batches, sink) = AsyncStream.makeStream(of: [FileChange].self)
        Task {
            for await changes in batches { await handle(changes) }
        }
        do {
            let watcher = try InotifyWatcher()
            try watcher.start(root: root, ignored: ignored) { sink.yield($0) }
        } catch {
            logger.warning("watching is off: \(error)")
            return
        }
        let watchOutside: @Sendable () -> Void = { [self] in watchPluginFolders(sink: sink) }
        watchOutside()
        live.withLock { $0.rewatch = watchOutside }
    }

    /// Plugins and the config may live outside the root: their folders are watched too, each
    /// on its own (not recursively: a plugin in the home folder must not watch all of it).
    private func watchPluginFolders(sink: AsyncStream<[FileChange]>.Continuation) {
        let root = config.rootDir
        let configFile = live.withLock { $0.config.configFile }
        let files = host.pluginFiles.union([configFile].compactMap { $0 })
        let folders = Set(files.map { ($0 as NSString).deletingLastPathComponent })
            .filter { $0 != root && !$0.hasPrefix(root + "/") && !$0.hasPrefix(Self.bundledPlugins) }
        let new = live.withLock { state -> Set<String> in
            let new = folders.subtracting(state.watchedOutside)
            state.watchedOutside.formUnion(new)
            return new
        }
        for folder in new {
            do {
                try InotifyWatcher().start(root: folder, ignored: { $0.contains("/") }) { sink.yield($0) }
            } catch {
                logger.warning("cannot watch \(folder): \(error)")
            }
        }
    }

    func handle(_ changes: [FileChange]) async {
        store.invalidate()
        let pluginFiles = host.pluginFiles
        let configFile = live.withLock { $0.config.configFile }
        let isPluginCode: (FileChange) -> Bool = { pluginFiles.contains($0.file) || $0.file == configFile }
        if changes.contains(where: isPluginCode) {
            await reloadPlugins()
        }
        // Plugin code is not page code: editing it reloads the plugins, not the pages.
        let root = config.rootDir
        let events = changes.filter { $0.file.hasPrefix(root + "/") && !isPluginCode($0) }.map {
            PluginHost.FileEvent(path: String($0.file.dropFirst(root.count)), file: $0.file, kind: $0.kind.rawValue)
        }
        if !events.isEmpty { await host.filesChanged(events) }
    }

    /// Reads the config again and loads the plugin set anew; if that fails, the old plugins
    /// keep running and the error is shown in the terminal and in the open pages' consoles.
    func reloadPlugins() async {
        let fresh: LunarConfig
        do {
            fresh = try Self.loadConfig(
                options, rootArgument: config.rootDir, workingDirectory: FileManager.default.currentDirectoryPath, executor: executor
            )
        } catch {
            report("the config did not reload, the previous plugins keep running: \(error)")
            return
        }
        let url = live.withLock { $0.url }
        do {
            let set = try await host.load(Self.entries(fresh), searchDirs: Self.searchDirs(fresh), rootDir: config.rootDir)
            let limits = (fresh.timeout, fresh.memoryLimit)
            await executor.run { lua in
                lua.budgetMilliseconds = limits.0
                lua.memoryLimit = limits.1
            }
            try await host.activate(set, context: StartContext(config: fresh.raw, rootDir: config.rootDir, url: url))
            let (rewatch, previous) = live.withLock { state in
                defer {
                    state.config = fresh
                    state.ignoreGlobs = fresh.ignore.map(Glob.init)
                }
                return (state.rewatch, state.config)
            }
            rewatch?()
            logger.info("plugins reloaded: \(set.summary.names.joined(separator: ", "))")
            let needRestart = Self.settingsNeedingRestart(previous, fresh)
            if !needRestart.isEmpty {
                report("the config's \(needRestart.joined(separator: ", ")) changed: restart Lunar to apply \(needRestart.count == 1 ? "it" : "them")")
            }
        } catch {
            report("plugins did not reload, the previous ones keep running: \(error.description)")
        }
    }

    /// What a reload applies: plugins, `pluginPaths`, `timeout`, `memoryLimit`, added `ignore`
    /// globs. The rest shapes the listening server and the request path, made once at start
    /// (and a folder ignored at start is not being watched, so removing a glob waits too).
    static func settingsNeedingRestart(_ old: LunarConfig, _ new: LunarConfig) -> [String] {
        var changed: [String] = []
        if old.port != new.port { changed.append("port") }
        if old.hostname != new.hostname { changed.append("hostname") }
        if old.watch != new.watch { changed.append("watch") }
        if old.appIndex != new.appIndex { changed.append("appIndex") }
        if old.injectWebSocket != new.injectWebSocket { changed.append("injectWebSocket") }
        if old.maxMessageSize != new.maxMessageSize { changed.append("maxMessageSize") }
        if !Set(old.ignore).isSubset(of: new.ignore) { changed.append("ignore (a glob removed)") }
        return changed
    }

    private func report(_ message: String) {
        logger.error("\(message)")
        host.consoleError("[lunar] \(message)")
    }
}
