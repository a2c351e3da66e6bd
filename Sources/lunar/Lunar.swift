import ArgumentParser
import Foundation
import LunarServer

/// `lunar [ROOT] [--port N] [--host H] [--config FILE] [--plugin PATH]... [--open [PATH]]
/// [--app-index FILE] [--no-watch] [--log-level debug|info|warn|error]`
@main
struct Lunar: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lunar",
        abstract: "A development server for web projects, extended with Lua plugins.",
        discussion: "Serves ROOT over HTTP with a WebSocket channel at /wds. Reads ROOT/lunar.config.lua if present; flags win over it."
    )

    @Argument(help: "The folder to serve (default: the current folder).")
    var root: String?

    @Option(help: "The port (default 8000, or the next free one).")
    var port: Int?

    @Option(help: "The address to bind (default 127.0.0.1).")
    var host: String?

    @Option(help: "The config file (default ROOT/lunar.config.lua).")
    var config: String?

    @Option(name: .customLong("plugin"), help: "A plugin file or folder to load (repeatable).")
    var plugins: [String] = []

    @Option(help: ArgumentHelp("Open the page in a browser; `--open` alone opens /.", valueName: "path"))
    var open: String?

    @Option(name: .customLong("app-index"), help: "Serve FILE for unknown extension-less paths (single-page apps).")
    var appIndex: String?

    @Flag(name: .customLong("no-watch"), help: "Do not watch files or reload pages.")
    var noWatch = false

    @Option(name: .customLong("log-level"), help: "debug, info, warn or error.")
    var logLevel: String = "info"

    mutating func validate() throws {
        guard ["debug", "info", "warn", "error"].contains(logLevel) else {
            throw ValidationError("--log-level must be debug, info, warn or error, not '\(logLevel)'")
        }
        if let port, !(0 ... 65535).contains(port) {
            throw ValidationError("--port must be within 0–65535, not \(port)")
        }
    }

    static func main() async {
        // `--open` may stand alone; give it its default path so the parser sees a value.
        var arguments = Array(CommandLine.arguments.dropFirst())
        if let index = arguments.firstIndex(of: "--open"), index == arguments.count - 1 || arguments[index + 1].hasPrefix("-") {
            arguments.insert("/", at: index + 1)
        }
        do {
            let command = try parseAsRoot(arguments)
            guard let lunar = command as? Lunar else {
                var other = command
                try other.run()
                return
            }
            var options = CommandLineOptions(root: lunar.root)
            options.port = lunar.port
            options.host = lunar.host
            options.config = lunar.config
            options.plugins = lunar.plugins
            options.open = lunar.open
            options.appIndex = lunar.appIndex
            options.noWatch = lunar.noWatch
            options.logLevel = lunar.logLevel
            Foundation.exit(await LunarServer.run(options))
        } catch {
            exit(withError: error)
        }
    }
}
