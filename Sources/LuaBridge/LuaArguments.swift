import CLua
import CLuaSupport

/// A wrong call from Lua, reported like `luaL_argerror`:
/// `bad argument #1 to 'json.encode' (cannot encode a function)`.
public struct LuaArgumentError: Error, Sendable {
    public let argument: Int32?
    public let message: String

    public init(argument: Int32, _ message: String) {
        self.argument = argument
        self.message = message
    }

    public init(_ message: String) {
        self.argument = nil
        self.message = message
    }

    func render(function: String) -> String {
        guard let argument else { return "\(function): \(message)" }
        return "bad argument #\(argument) to '\(function)' (\(message))"
    }
}

/// The arguments of a call from Lua into a host function, checked like lauxlib's `luaL_check*`,
/// except that a wrong argument throws instead of raising a Lua error from Swift.
public struct LuaArguments {
    public let state: LuaState
    public let function: String

    public var count: Int32 { lua_gettop(state.L) }

    public func type(_ n: Int32) -> Int32 { lua_type(state.L, n) }

    public func typeName(_ n: Int32) -> String { String(cString: lua_typename(state.L, lua_type(state.L, n))) }

    private func expected(_ n: Int32, _ what: String) -> LuaArgumentError {
        LuaArgumentError(argument: n, "\(what) expected, got \(type(n) == LUA_TNONE ? "no value" : typeName(n))")
    }

    public func string(_ n: Int32) throws(LuaArgumentError) -> String {
        guard type(n) == LUA_TSTRING, let value = state.string(at: n) else { throw expected(n, "string") }
        return value
    }

    public func bytes(_ n: Int32) throws(LuaArgumentError) -> [UInt8] {
        guard type(n) == LUA_TSTRING, let value = state.bytes(at: n) else { throw expected(n, "string") }
        return value
    }

    public func optionalString(_ n: Int32) throws(LuaArgumentError) -> String? {
        if lunar_isnoneornil(state.L, n) != 0 { return nil }
        return try string(n)
    }

    public func integer(_ n: Int32) throws(LuaArgumentError) -> Int64 {
        var isNumber: Int32 = 0
        let value = lua_tointegerx(state.L, n, &isNumber)
        guard type(n) == LUA_TNUMBER else { throw expected(n, "number") }
        guard isNumber != 0 else { throw LuaArgumentError(argument: n, "number has no integer representation") }
        return value
    }

    public func optionalInteger(_ n: Int32) throws(LuaArgumentError) -> Int64? {
        if lunar_isnoneornil(state.L, n) != 0 { return nil }
        return try integer(n)
    }

    public func number(_ n: Int32) throws(LuaArgumentError) -> Double {
        guard type(n) == LUA_TNUMBER else { throw expected(n, "number") }
        return lua_tonumberx(state.L, n, nil)
    }

    public func checkTable(_ n: Int32) throws(LuaArgumentError) {
        guard type(n) == LUA_TTABLE else { throw expected(n, "table") }
    }

    public func checkFunction(_ n: Int32) throws(LuaArgumentError) {
        guard type(n) == LUA_TFUNCTION else { throw expected(n, "function") }
    }

    public func checkAny(_ n: Int32) throws(LuaArgumentError) {
        guard type(n) != LUA_TNONE else { throw LuaArgumentError(argument: n, "value expected") }
    }
}
