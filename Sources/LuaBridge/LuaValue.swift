import CLua
import CLuaSupport

/// A Lua value copied into Swift. Tables become `.array` when their keys are exactly 1...n,
/// otherwise `.table` keyed by the string form of each key; functions stay in Lua, referenced.
public enum LuaValue: Sendable, Equatable {
    case `nil`
    case boolean(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([LuaValue])
    case table([String: LuaValue])
    case function(LuaReference)

    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var isNil: Bool { self == .nil }

    public var typeName: String {
        switch self {
        case .nil: "nil"
        case .boolean: "boolean"
        case .integer, .number: "number"
        case .string: "string"
        case .array, .table: "table"
        case .function: "function"
        }
    }
}

extension LuaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(booleanLiteral value: Bool) { self = .boolean(value) }
}

extension LuaState {
    /// Pushes `value`. Pushes one value (nil if the stack cannot grow that deep).
    public func push(_ value: LuaValue) {
        guard lua_checkstack(L, 3) != 0 else {
            lua_pushnil(L)
            return
        }
        switch value {
        case .nil: lua_pushnil(L)
        case .boolean(let b): lua_pushboolean(L, b ? 1 : 0)
        case .integer(let i): lua_pushinteger(L, i)
        case .number(let d): lua_pushnumber(L, d)
        case .string(let s): push(s)
        case .array(let items):
            lua_createtable(L, Int32(items.count), 0)
            for (index, item) in items.enumerated() {
                push(item)
                lua_rawseti(L, -2, lua_Integer(index + 1))
            }
        case .table(let fields):
            lua_createtable(L, 0, Int32(fields.count))
            for (key, item) in fields {
                push(key)
                push(item)
                lua_rawset(L, -3)
            }
        case .function(let reference): push(reference)
        }
    }

    public func push(_ string: String) {
        var string = string
        string.withUTF8 { bytes in
            _ = bytes.withMemoryRebound(to: CChar.self) { lua_pushlstring(L, $0.baseAddress, $0.count) }
        }
    }

    public func push(bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buffer in
            _ = buffer.withMemoryRebound(to: CChar.self) { lua_pushlstring(L, $0.baseAddress, $0.count) }
        }
    }

    /// Reads the value at `index` without changing the stack. Tables are read with raw access
    /// (no metamethods run); a table met again inside itself (a cycle), or nested deeper than
    /// 100, reads as nil.
    public func value(at index: Int32) -> LuaValue {
        var open: Set<UnsafeRawPointer> = []
        return value(at: index, open: &open)
    }

    private func value(at index: Int32, open: inout Set<UnsafeRawPointer>) -> LuaValue {
        let index = lua_absindex(L, index)
        switch lua_type(L, index) {
        case LUA_TBOOLEAN: return .boolean(lua_toboolean(L, index) != 0)
        case LUA_TNUMBER:
            if lua_isinteger(L, index) != 0 { return .integer(lua_tointegerx(L, index, nil)) }
            return .number(lua_tonumberx(L, index, nil))
        case LUA_TSTRING: return .string(string(at: index) ?? "")
        case LUA_TFUNCTION:
            lua_pushvalue(L, index)
            return .function(reference())
        case LUA_TTABLE:
            // `open` holds the tables being read, so its size is the depth: deeper than 100 reads as nil.
            guard let identity = lua_topointer(L, index), !open.contains(identity), open.count < 100,
                  lua_checkstack(L, 3) != 0 else { return .nil }
            open.insert(identity)
            defer { open.remove(identity) }
            return table(at: index, open: &open)
        default: return .nil
        }
    }

    private func table(at index: Int32, open: inout Set<UnsafeRawPointer>) -> LuaValue {
        var byKey: [String: LuaValue] = [:]
        var integerKeys: [Int64: LuaValue] = [:]
        var onlyIntegerKeys = true
        lua_pushnil(L)
        while lua_next(L, index) != 0 {
            let item = value(at: -1, open: &open)
            if lua_type(L, -2) == LUA_TNUMBER && lua_isinteger(L, -2) != 0 {
                integerKeys[lua_tointegerx(L, -2, nil)] = item
            } else {
                onlyIntegerKeys = false
                if lua_type(L, -2) == LUA_TSTRING, let key = string(at: -2) {
                    byKey[key] = item
                }
            }
            lunar_pop(L, 1)
        }
        if onlyIntegerKeys, !integerKeys.isEmpty, integerKeys.keys.min() == 1,
           integerKeys.keys.max() == Int64(integerKeys.count) {
            return .array((1...Int64(integerKeys.count)).map { integerKeys[$0]! })
        }
        for (key, item) in integerKeys { byKey[String(key)] = item }
        return .table(byKey)
    }

    /// The string at `index` if it is a string (numbers are not converted).
    public func string(at index: Int32) -> String? {
        guard lua_type(L, index) == LUA_TSTRING else { return nil }
        var length = 0
        guard let pointer = lunar_tostring(L, index, &length) else { return nil }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }

    /// The raw bytes of the string at `index`.
    public func bytes(at index: Int32) -> [UInt8]? {
        guard lua_type(L, index) == LUA_TSTRING else { return nil }
        var length = 0
        guard let pointer = lunar_tostring(L, index, &length) else { return nil }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
            Array(UnsafeBufferPointer(start: $0, count: length))
        }
    }
}
