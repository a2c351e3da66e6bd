import Foundation
import PluginHost

extension LunarServer {
    /// Watches the root (SPEC §5) and the plugins' own files: a change to a served file goes
    /// to the plugins (`fileChanged`, then live-reload); a change to a plugin, a module it
    /// required or the config reloads the plugins without a restart.
    func startWatching() {
        let root = config.rootDir
        let globs = config.ignore.map(Glob.init)
        let ignored: @Sendable (String) -> Bool = { relative in
            let first = relative.split(separator: "/").first.map(String.init) ?? relative
            return first == ".git" || first == "node_modules" || relative.split(separator: "/").contains("node_modules")
                || globs.contains { $0.matches(relative) }
        }
        do {
            let watcher = try InotifyWatcher()
            try watcher.start(root: root, ignored: ignored) { changes in
                Task { await self.handle(changes) }
            }
            // Plugins and the config may live outside the root: watch their folders too.
            let outside = Set((host.pluginFiles.map { ($0 as NSString).deletingLastPathComponent } + [config.configFile].compactMap { $0 })
                .filter { !$0.hasPrefix(root + "/") && $0 != root && !$0.hasPrefix(Self.bundledPlugins) })
            for folder in outside where !folder.hasSuffix(".lua") {
                let extra = try InotifyWatcher()
                try extra.start(root: folder, ignored: { _ in false }) { changes in
                    Task { await self.handle(changes) }
                }
            }
        } catch {
            logger.warning("watching is off: \(error)")
        }
    }

    func handle(_ changes: [FileChange]) async {
        store.invalidate()
        let pluginFiles = host.pluginFiles
        let isPluginCode: (FileChange) -> Bool = { pluginFiles.contains($0.file) || $0.file == self.config.configFile }
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

    /// Loads the plugin set anew; if it fails, the old plugins keep running and the error is
    /// shown in the terminal and in the open pages' consoles.
    func reloadPlugins() async {
        var fresh = config
        if let file = config.configFile {
            let root = config.rootDir
            let reread = await executor.run { lua in
                Result { () throws(ConfigError) -> LunarConfig in
                    var reread = LunarConfig(rootDir: root)
                    try reread.apply(file: file, lua: lua)
                    return reread
                }
            }
            switch reread {
            case .success(let reread): fresh.plugins = reread.plugins + Self.commandLinePlugins(options)
            case .failure(let error):
                report("the config did not reload, the previous plugins keep running: \(error)")
                return
            }
        }
        do {
            let set = try await host.load(Self.entries(fresh), searchDirs: searchDirs, rootDir: config.rootDir)
            let url = "http://\(config.hostname):\(options.port ?? config.port)/"
            try await host.activate(set, context: StartContext(config: config.raw, rootDir: config.rootDir, url: url))
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
