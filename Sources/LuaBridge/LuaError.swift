/// An error raised by Lua code or reported by the bridge. `message` starts with `file:line:`
/// when Lua knows where it happened; `traceback` is Lua's stack traceback, if one was taken.
public struct LuaError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case syntax, runtime, memory, timeout, file
    }

    public let kind: Kind
    public let message: String
    public let traceback: String

    public init(kind: Kind, message: String, traceback: String = "") {
        self.kind = kind
        self.message = message
        self.traceback = traceback
    }

    /// Splits what `lunar_pcall` leaves ("msg\nstack traceback:\n...") into message and traceback.
    init(status: Int32, raw: String) {
        let parts = raw.components(separatedBy: "\nstack traceback:")
        let message = parts[0]
        let traceback = parts.count > 1 ? "stack traceback:" + parts[1...].joined(separator: "\nstack traceback:") : ""
        let kind: Kind
        switch status {
        case LUA_ERRSYNTAX: kind = .syntax
        case LUA_ERRMEM: kind = .memory
        case LUA_ERRFILE: kind = .file
        default: kind = message.contains("ran past its time budget") ? .timeout : .runtime
        }
        self.init(kind: kind, message: message, traceback: traceback)
    }

    public var description: String { message }

    /// The `file:line` prefix of the message, if it has one.
    public var location: String? {
        let pattern = message.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard pattern.count == 3, Int(pattern[1]) != nil else { return nil }
        return "\(pattern[0]):\(pattern[1])"
    }
}

import CLua
import Foundation
