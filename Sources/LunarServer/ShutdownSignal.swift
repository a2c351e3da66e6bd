import Dispatch
import Foundation

/// SIGINT and SIGTERM run one clean stop (plugins' `serverStop`, close frames 1001, exit 0).
final class ShutdownSignal: @unchecked Sendable {
    // @unchecked: the sources are set once, before any signal can arrive.
    private var sources: [DispatchSourceSignal] = []

    func install(_ stop: @escaping @Sendable () async -> Void) {
        let once = OnceFlag()
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                guard once.claim() else { return }
                Task { await stop() }
            }
            source.resume()
            sources.append(source)
        }
    }
}

final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var claimed = false

    func claim() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if claimed { return false }
        claimed = true
        return true
    }
}

/// `--open`: the page in the user's browser, when one can be started.
enum Browser {
    static func open(_ url: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["xdg-open", url]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        if (try? process.run()) == nil { print("Open \(url) in your browser.") }
    }
}
