import Dispatch

/// The one thread that owns a ``LuaState``: every use of the state goes through `run`, so
/// Lua code runs one piece at a time, in the order the pieces were submitted.
///
/// ```swift
/// let executor = LuaExecutor(state: try LuaState())
/// let sum = await executor.run { lua in try? lua.run("return 2 + 2") }
/// ```
public final class LuaExecutor: @unchecked Sendable {
    // @unchecked: `state` is only touched on `queue`.
    private let state: LuaState
    private let queue = DispatchQueue(label: "lunar.lua")

    public init(state: LuaState) {
        self.state = state
    }

    /// Runs `body` on the Lua thread and returns its result.
    public func run<T: Sendable>(_ body: @escaping @Sendable (LuaState) -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: body(self.state)) }
        }
    }

    /// Runs `body` on the Lua thread later; the caller does not wait.
    public func submit(_ body: @escaping @Sendable (LuaState) -> Void) {
        queue.async { body(self.state) }
    }

    /// Runs `body` on the Lua thread after `milliseconds`.
    public func submit(after milliseconds: Int, _ body: @escaping @Sendable (LuaState) -> Void) {
        queue.asyncAfter(deadline: .now() + .milliseconds(milliseconds)) { body(self.state) }
    }

    /// Runs `body` on the Lua thread and blocks the calling thread until it is done; for
    /// start-up and shutdown only, never from the Lua thread itself.
    public func runBlocking<T>(_ body: (LuaState) throws -> T) rethrows -> T {
        try queue.sync { try body(state) }
    }
}
