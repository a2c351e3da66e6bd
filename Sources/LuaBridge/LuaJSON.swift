import CLua
import CLuaSupport
import Foundation

/// The `json` global: `encode`, `decode`, `null` and `array`, working directly on the Lua
/// stack (no intermediate Swift values), since every WebSocket message goes through it.
///
/// A table whose keys are exactly 1...n encodes as an array, any other table as an object
/// with its keys sorted; `json.array(t)` marks a table (even an empty one) as an array.
/// Decoded arrays carry the same mark, so `encode(decode(s))` keeps `[]` as `[]`.
extension LuaState {
    static let arrayMetatableName = "lunar.json.array"
    static let maxDepth = 1000

    func installJSON() {
        luaL_newmetatable(L, LuaState.arrayMetatableName)
        pop()
        lunar_newtable(L)
        setFunction("json.encode", named: "encode", in: -1) { args throws(LuaArgumentError) in
            try args.checkAny(1)
            var encoder = JSONEncoding(state: args.state)
            try encoder.encode(1, depth: 0)
            args.state.push(bytes: encoder.output)
            return 1
        }
        setFunction("json.decode", named: "decode", in: -1) { args throws(LuaArgumentError) in
            let text = try args.bytes(1)
            try text.withUnsafeBufferPointer { buffer throws(LuaArgumentError) in
                var decoder = JSONDecoding(state: args.state, input: buffer)
                try decoder.decodeDocument()
            }
            return 1
        }
        setFunction("json.array", named: "array", in: -1) { args throws(LuaArgumentError) in
            if lunar_isnoneornil(args.state.L, 1) != 0 {
                lunar_newtable(args.state.L)
            } else {
                try args.checkTable(1)
                lua_settop(args.state.L, 1)
            }
            luaL_setmetatable(args.state.L, LuaState.arrayMetatableName)
            return 1
        }
        lua_pushlightuserdata(L, nil)
        lua_setfield(L, -2, "null")
        lua_setglobal(L, "json")
    }

    /// Encodes the value at `index` as JSON, or returns why it cannot be encoded.
    public func encodeJSON(at index: Int32) -> Result<[UInt8], LuaArgumentError> {
        var encoder = JSONEncoding(state: self)
        let base = lua_gettop(L)
        do throws(LuaArgumentError) {
            try encoder.encode(lua_absindex(L, index), depth: 0)
            return .success(encoder.output)
        } catch {
            lua_settop(L, base)
            return .failure(error)
        }
    }
}

struct JSONEncoding {
    let state: LuaState
    var output: [UInt8] = []
    private var open: Set<UnsafeRawPointer> = []

    init(state: LuaState) {
        self.state = state
        output.reserveCapacity(64)
    }

    private var L: OpaquePointer { state.L }

    private func fail(_ message: String) -> LuaArgumentError { LuaArgumentError(argument: 1, message) }

    mutating func encode(_ index: Int32, depth: Int) throws(LuaArgumentError) {
        let index = lua_absindex(L, index)
        switch lua_type(L, index) {
        case LUA_TNIL, LUA_TNONE: output += Array("null".utf8)
        case LUA_TBOOLEAN: output += Array((lua_toboolean(L, index) != 0 ? "true" : "false").utf8)
        case LUA_TNUMBER:
            if lua_isinteger(L, index) != 0 {
                output += Array(String(lua_tointegerx(L, index, nil)).utf8)
            } else {
                let number = lua_tonumberx(L, index, nil)
                guard number.isFinite else { throw fail("cannot encode \(number.isNaN ? "NaN" : "an infinite number") as JSON") }
                if number == number.rounded(), abs(number) < 1e15 {
                    output += Array(String(Int64(number)).utf8)
                } else {
                    output += Array("\(number)".utf8)
                }
            }
        case LUA_TSTRING: try encodeString(index)
        case LUA_TLIGHTUSERDATA where lua_touserdata(L, index) == nil: output += Array("null".utf8)
        case LUA_TTABLE: try encodeTable(index, depth: depth)
        default:
            throw fail("cannot encode a \(String(cString: lua_typename(L, lua_type(L, index)))) as JSON")
        }
    }

    private mutating func encodeString(_ index: Int32) throws(LuaArgumentError) {
        var length = 0
        let pointer = lunar_tostring(L, index, &length)!
        let bytes = UnsafeRawBufferPointer(start: pointer, count: length)
        guard String(validating: bytes.bindMemory(to: UInt8.self), as: UTF8.self) != nil else {
            throw fail("cannot encode a string that is not valid UTF-8 as JSON")
        }
        output.append(UInt8(ascii: "\""))
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): output += [92, 34]
            case UInt8(ascii: "\\"): output += [92, 92]
            case 10: output += [92, UInt8(ascii: "n")]
            case 13: output += [92, UInt8(ascii: "r")]
            case 9: output += [92, UInt8(ascii: "t")]
            case 0 ..< 32, 127:
                let hex = Array("0123456789abcdef".utf8)
                output += [92, UInt8(ascii: "u"), 48, 48, hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }

    private func isMarkedArray(_ index: Int32) -> Bool {
        guard lua_getmetatable(L, index) != 0 else { return false }
        lua_getfield(L, lunar_registryindex(), LuaState.arrayMetatableName)
        defer { lunar_pop(L, 2) }
        return lua_rawequal(L, -1, -2) != 0
    }

    private mutating func encodeTable(_ index: Int32, depth: Int) throws(LuaArgumentError) {
        guard depth < LuaState.maxDepth else { throw fail("cannot encode JSON nested deeper than \(LuaState.maxDepth)") }
        guard lua_checkstack(L, 4) != 0 else { throw fail("stack overflow while encoding JSON") }
        let identity = lua_topointer(L, index)!
        guard !open.contains(identity) else { throw fail("cannot encode a table that contains itself as JSON") }
        open.insert(identity)
        defer { open.remove(identity) }

        var count: Int64 = 0
        var sequenceKeys = true
        var keys: [[UInt8]] = []
        lua_pushnil(L)
        while lua_next(L, index) != 0 {
            count += 1
            switch lua_type(L, -2) {
            case LUA_TNUMBER where lua_isinteger(L, -2) != 0:
                let key = lua_tointegerx(L, -2, nil)
                if key < 1 { sequenceKeys = false }
                keys.append(Array(String(key).utf8))
            case LUA_TNUMBER:
                sequenceKeys = false
                keys.append(Array("\(lua_tonumberx(L, -2, nil))".utf8))
            case LUA_TSTRING:
                sequenceKeys = false
                keys.append(state.bytes(at: -2)!)
            default:
                let keyType = String(cString: lua_typename(L, lua_type(L, -2)))
                lunar_pop(L, 2)
                throw fail("cannot encode a table with \(keyType) keys as JSON")
            }
            lunar_pop(L, 1)
        }
        let length = Int64(lua_rawlen(L, index))
        let asArray = isMarkedArray(index) || (count > 0 && sequenceKeys && length == count)
        if asArray {
            output.append(UInt8(ascii: "["))
            var position: Int64 = 1
            while position <= length {
                if position > 1 { output.append(UInt8(ascii: ",")) }
                lua_rawgeti(L, index, position)
                try encode(-1, depth: depth + 1)
                lunar_pop(L, 1)
                position += 1
            }
            output.append(UInt8(ascii: "]"))
            return
        }
        output.append(UInt8(ascii: "{"))
        for (offset, key) in keys.sorted(by: { $0.lexicographicallyPrecedes($1) }).enumerated() {
            if offset > 0 { output.append(UInt8(ascii: ",")) }
            state.push(bytes: key)
            lua_pushvalue(L, -1)
            if lua_rawget(L, index) == LUA_TNIL, let integer = Int64(String(decoding: key, as: UTF8.self)) {
                // the key was an integer: look it up as one
                lunar_pop(L, 1)
                lua_rawgeti(L, index, integer)
            }
            try encodeString(-2)
            output.append(UInt8(ascii: ":"))
            try encode(-1, depth: depth + 1)
            lunar_pop(L, 2)
        }
        output.append(UInt8(ascii: "}"))
    }
}

struct JSONDecoding {
    let state: LuaState
    let input: UnsafeBufferPointer<UInt8>
    var position = 0

    init(state: LuaState, input: UnsafeBufferPointer<UInt8>) {
        self.state = state
        self.input = input
    }

    private var L: OpaquePointer { state.L }

    private func fail(_ message: String) -> LuaArgumentError {
        LuaArgumentError(argument: 1, "invalid JSON: \(message) at character \(position + 1)")
    }

    /// JSON text is UTF-8 (RFC 8259 §8.1); Lua strings are bytes, so it is checked here.
    static func isValidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.contains(where: { $0 >= 0x80 }) else { return true }
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    private func unexpected() -> LuaArgumentError {
        guard position < input.count else { return fail("unexpected end") }
        let byte = input[position]
        let shown = byte >= 32 && byte < 127 ? "'\(Character(Unicode.Scalar(byte)))'" : "byte \(byte)"
        return fail("unexpected \(shown)")
    }

    private mutating func skipSpace() {
        while position < input.count {
            switch input[position] {
            case 32, 9, 10, 13: position += 1
            default: return
            }
        }
    }

    /// Pushes the decoded document: exactly one value, then only white space.
    mutating func decodeDocument() throws(LuaArgumentError) {
        let base = lua_gettop(L)
        do throws(LuaArgumentError) {
            try decodeValue(depth: 0)
            skipSpace()
            guard position == input.count else { throw unexpected() }
        } catch {
            lua_settop(L, base)
            throw error
        }
    }

    private mutating func decodeValue(depth: Int) throws(LuaArgumentError) {
        skipSpace()
        guard position < input.count else { throw unexpected() }
        guard lua_checkstack(L, 3) != 0 else { throw fail("too deeply nested") }
        switch input[position] {
        case UInt8(ascii: "{"): try decodeObject(depth: depth)
        case UInt8(ascii: "["): try decodeArray(depth: depth)
        case UInt8(ascii: "\""): try decodeString()
        case UInt8(ascii: "t"): try literal("true"); lua_pushboolean(L, 1)
        case UInt8(ascii: "f"): try literal("false"); lua_pushboolean(L, 0)
        case UInt8(ascii: "n"): try literal("null"); lua_pushlightuserdata(L, nil)
        case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"): try decodeNumber()
        default: throw unexpected()
        }
    }

    private mutating func literal(_ word: String) throws(LuaArgumentError) {
        for byte in word.utf8 {
            guard position < input.count, input[position] == byte else { throw unexpected() }
            position += 1
        }
    }

    private mutating func decodeObject(depth: Int) throws(LuaArgumentError) {
        guard depth < LuaState.maxDepth else { throw fail("nested deeper than \(LuaState.maxDepth)") }
        position += 1
        lunar_newtable(L)
        skipSpace()
        if position < input.count, input[position] == UInt8(ascii: "}") { position += 1; return }
        while true {
            skipSpace()
            guard position < input.count, input[position] == UInt8(ascii: "\"") else { throw unexpected() }
            try decodeString()
            skipSpace()
            guard position < input.count, input[position] == UInt8(ascii: ":") else { throw unexpected() }
            position += 1
            try decodeValue(depth: depth + 1)
            lua_rawset(L, -3)
            skipSpace()
            guard position < input.count else { throw unexpected() }
            if input[position] == UInt8(ascii: ",") { position += 1; continue }
            if input[position] == UInt8(ascii: "}") { position += 1; return }
            throw unexpected()
        }
    }

    private mutating func decodeArray(depth: Int) throws(LuaArgumentError) {
        guard depth < LuaState.maxDepth else { throw fail("nested deeper than \(LuaState.maxDepth)") }
        position += 1
        lunar_newtable(L)
        luaL_setmetatable(L, LuaState.arrayMetatableName)
        skipSpace()
        if position < input.count, input[position] == UInt8(ascii: "]") { position += 1; return }
        var index: lua_Integer = 1
        while true {
            try decodeValue(depth: depth + 1)
            lua_rawseti(L, -2, index)
            index += 1
            skipSpace()
            guard position < input.count else { throw unexpected() }
            if input[position] == UInt8(ascii: ",") { position += 1; continue }
            if input[position] == UInt8(ascii: "]") { position += 1; return }
            throw unexpected()
        }
    }

    private mutating func decodeNumber() throws(LuaArgumentError) {
        let start = position
        var isInteger = true
        if input[position] == UInt8(ascii: "-") { position += 1 }
        guard position < input.count, (48 ... 57).contains(input[position]) else { throw unexpected() }
        if input[position] == 48 {
            position += 1
        } else {
            while position < input.count, (48 ... 57).contains(input[position]) { position += 1 }
        }
        if position < input.count, input[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard position < input.count, (48 ... 57).contains(input[position]) else { throw unexpected() }
            while position < input.count, (48 ... 57).contains(input[position]) { position += 1 }
        }
        if position < input.count, input[position] | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            position += 1
            if position < input.count, input[position] == UInt8(ascii: "+") || input[position] == UInt8(ascii: "-") { position += 1 }
            guard position < input.count, (48 ... 57).contains(input[position]) else { throw unexpected() }
            while position < input.count, (48 ... 57).contains(input[position]) { position += 1 }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: input[start ..< position]), as: UTF8.self)
        if isInteger, let integer = Int64(text) {
            lua_pushinteger(L, integer)
        } else {
            lua_pushnumber(L, Double(text) ?? 0)
        }
    }

    private mutating func hex4() throws(LuaArgumentError) -> UInt32 {
        guard position + 4 <= input.count else { throw fail("unfinished \\u escape") }
        var value: UInt32 = 0
        for _ in 0 ..< 4 {
            let byte = input[position]
            let digit: UInt32
            switch byte {
            case 48 ... 57: digit = UInt32(byte - 48)
            case 97 ... 102: digit = UInt32(byte - 87)
            case 65 ... 70: digit = UInt32(byte - 55)
            default: throw fail("bad \\u escape")
            }
            value = value * 16 + digit
            position += 1
        }
        return value
    }

    private mutating func decodeString() throws(LuaArgumentError) {
        position += 1
        let start = position
        // Fast path: no escapes.
        while position < input.count, input[position] != UInt8(ascii: "\""), input[position] != 92, input[position] >= 32 {
            position += 1
        }
        if position < input.count, input[position] == UInt8(ascii: "\"") {
            let slice = UnsafeBufferPointer(rebasing: input[start ..< position])
            guard Self.isValidUTF8(slice) else { position = start; throw fail("a string that is not valid UTF-8") }
            _ = slice.withMemoryRebound(to: CChar.self) { lua_pushlstring(L, $0.baseAddress, $0.count) }
            position += 1
            return
        }
        var bytes = Array(input[start ..< position])
        while true {
            guard position < input.count else { throw fail("unfinished string") }
            let byte = input[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard bytes.withUnsafeBufferPointer(Self.isValidUTF8) else { position = start; throw fail("a string that is not valid UTF-8") }
                state.push(bytes: bytes)
                return
            case 92:
                guard position < input.count else { throw fail("unfinished string") }
                let escape = input[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), 92, UInt8(ascii: "/"): bytes.append(escape)
                case UInt8(ascii: "b"): bytes.append(8)
                case UInt8(ascii: "f"): bytes.append(12)
                case UInt8(ascii: "n"): bytes.append(10)
                case UInt8(ascii: "r"): bytes.append(13)
                case UInt8(ascii: "t"): bytes.append(9)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800 ..< 0xDC00).contains(scalar), position + 6 <= input.count,
                       input[position] == 92, input[position + 1] == UInt8(ascii: "u") {
                        let saved = position
                        position += 2
                        let low = try hex4()
                        if (0xDC00 ..< 0xE000).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            position = saved
                        }
                    }
                    let character = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                    bytes += Array(String(character).utf8)
                default: throw fail("bad escape")
                }
            case 0 ..< 32:
                position -= 1
                throw fail("control character in string")
            default: bytes.append(byte)
            }
        }
    }
}
