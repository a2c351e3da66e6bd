import Foundation
import PluginHost

extension LunarServer {
    /// Watches the root (SPEC §5) and the plugins' own files: a change to a served file goes
    /// to the plugins (`fileChanged`, then live-reload); a change to a plugin, a module it
    /// required or the config reloads the plugins without a restart. Batches are handled one
    /// at a time, in order.
    func startWatching() {
        let root = config.rootDir
        let globs = config.ignore.map(Glob.init)
        // Lunar's own output, when redirected into the project, must not reload pages forever.
        let ownOutput = Set(["/proc/self/fd/1", "/proc/self/fd/2"].compactMap(FileStore.realPath))
        let ignored: @Sendable (String) -> Bool = { relative in
            let parts = relative.split(separator: "/")
            return parts.first == ".git" || parts.contains("node_modules")
                || globs.contains { $0.matches(relative) } || ownOutput.contains(root + "/" + relative)
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
            let budget = fresh.timeout
            await executor.run { lua in lua.budgetMilliseconds = budget }
            try await host.activate(set, context: StartContext(config: fresh.raw, rootDir: config.rootDir, url: url))
            let rewatch = live.withLock { state in
                state.config = fresh
                return state.rewatch
            }
            rewatch?()
            logger.info("plugins reloaded: \(set.summary.names.joined(separator: ", "))")
        } catch {
            report("plugins did not reload, the previous ones keep running: \(error.description)")
        }
    }

    private func report(_ message: String) {
        logger.error("\(message)")
        host.consoleError("[lunar] \(message)")
    }
}
