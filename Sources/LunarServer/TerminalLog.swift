import Foundation
import Logging

/// Terminal output: plain lines ("lunar warn: …"), since a developer reads them, not a log
/// collector.
enum TerminalLog {
    static func logger(level: String) -> Logger {
        var logger = Logger(label: "lunar") { _ in LineHandler() }
        logger.logLevel = Logger.Level(rawValue: level == "warn" ? "warning" : level) ?? .info
        return logger
    }

    /// One clear message for a user's mistake, on stderr.
    static func fail(_ message: String) {
        FileHandle.standardError.write(Data("lunar: error: \(message)\n".utf8))
    }

    struct LineHandler: LogHandler {
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let (level, message) = (event.level, event.message)
            let name = level == .warning ? "warn" : level.rawValue
            let text = "lunar \(name): \(message)\n"
            if level >= .warning {
                FileHandle.standardError.write(Data(text.utf8))
            } else {
                FileHandle.standardOutput.write(Data(text.utf8))
            }
        }
    }
}
