// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "lunar",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lunar", targets: ["lunar"]),
        .library(name: "LunarServer", targets: ["LunarServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        // liblua5.4 from the system (Debian: liblua5.4-dev).
        .systemLibrary(
            name: "CLua",
            pkgConfig: "lua5.4",
            providers: [.apt(["liblua5.4-dev"])]
        ),
        // The only code allowed to raise Lua errors (longjmp): the trampoline for Swift
        // functions, the deadline hook and the capped allocator.
        .target(name: "CLuaSupport", dependencies: ["CLua"]),
        // Layer 1: one lua_State, values, JSON. Knows nothing of HTTP or WebSockets.
        .target(name: "LuaBridge", dependencies: ["CLua", "CLuaSupport"]),
        // Layer 2: clients, rooms, outbound queues, replay. Knows nothing of Lua.
        .target(
            name: "WebSocketHub",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Layer 3: plugins, joining the Lua bridge and the hub.
        .target(
            name: "PluginHost",
            dependencies: [
                "CLua", "LuaBridge", "WebSocketHub",
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["lua"]
        ),
        // Layer 4: HTTP, files, safety, config, watcher.
        .target(
            name: "LunarServer",
            dependencies: [
                "LuaBridge", "WebSocketHub", "PluginHost",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSCompression", package: "hummingbird-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Client"]
        ),
        // Layer 5: the command line.
        .executableTarget(
            name: "lunar",
            dependencies: [
                "LunarServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "LuaBridgeTests", dependencies: ["LuaBridge"]),
        .testTarget(name: "WebSocketHubTests", dependencies: ["WebSocketHub"]),
        .testTarget(
            name: "LunarServerTests",
            dependencies: [
                "LunarServer", "PluginHost", "LuaBridge", "WebSocketHub",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
