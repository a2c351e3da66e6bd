import XCTest
@testable import LuaBridge

/// Every bridge call leaves the Lua stack as it found it (or as documented).
final class StackBalanceTests: XCTestCase {
    var lua: LuaState!

    override func setUpWithError() throws {
        lua = try LuaState()
        defineGlobal(lua, "needsString") { args throws(LuaArgumentError) in
            args.state.push(.string(try args.string(1)))
            return 1
        }
        // Something below, so that an off-by-one in either direction shows.
        lua.push(.string("sentinel"))
        lua.push(.integer(7))
    }

    private func assertBalanced(_ what: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        let before = lua.top
        do { try body() } catch {}
        XCTAssertEqual(lua.top, before, "stack changed by \(what)", file: file, line: line)
        XCTAssertEqual(lua.value(at: 1), "sentinel", file: file, line: line)
        XCTAssertEqual(lua.value(at: 2), 7, file: file, line: line)
    }

    func testRunAndCall() throws {
        assertBalanced("run with results") { _ = try lua.run("return 1, 2, {3}, function() end") }
        assertBalanced("run with a syntax error") { _ = try lua.run("return +") }
        assertBalanced("run with a runtime error") { _ = try lua.run("error('x')") }
        assertBalanced("run with a non-string error") { _ = try lua.run("error(setmetatable({}, {}))") }
        guard case .function(let f) = try first(lua, "return function(a, b) if a == 'fail' then error('no') end return a, b, 3 end") else {
            return XCTFail()
        }
        assertBalanced("call") { XCTAssertEqual(try lua.call(f, [1, 2]), [1, 2, 3]) }
        assertBalanced("failed call") { _ = try lua.call(f, ["fail"]) }
        assertBalanced("global/setGlobal") {
            lua.setGlobal("g", .table(["a": .array([1, 2])]))
            _ = lua.global("g")
            _ = lua.global("missing")
        }
        assertBalanced("host function errors") {
            _ = try? lua.run("return needsString(1)")
            _ = try lua.run("return pcall(needsString)")
            _ = try lua.run("return needsString('ok')")
        }
    }

    func testLowLevelCallConsumesFunctionAndArguments() throws {
        let base = lua.top
        try lua.load("return ...", name: "=echo")
        XCTAssertEqual(lua.top, base + 1)
        lua.push(.integer(1))
        lua.push(.string("two"))
        try lua.call(arguments: 2, results: 1)
        XCTAssertEqual(lua.top, base + 1)
        XCTAssertEqual(lua.value(at: -1), 1)
        lua.pop()

        try lua.load("error('x')", name: "=bad")
        lua.push(.integer(1))
        XCTAssertThrowsError(try lua.call(arguments: 1, results: 3))
        XCTAssertEqual(lua.top, base, "the function, its argument and the message are gone")

        XCTAssertThrowsError(try lua.load("return +", name: "=bad"))
        XCTAssertEqual(lua.top, base, "a failed load pushes nothing")
    }

    func testValueAtAndPush() throws {
        try lua.run("t = {1, {2, {3}}, k = {f = print}, fn = function() end}")
        try lua.load("return t", name: "=get")
        try lua.call(arguments: 0, results: 1)
        assertBalanced("value(at:) of a nested table") {
            XCTAssertEqual(lua.value(at: -1).typeName, "table")
            lua.setGlobal("copy", lua.global("t"))
        }
        lua.pop()
        assertBalanced("push + pop of every case") {
            for value: LuaValue in [.nil, true, 1, .number(1.5), "s", .array([1, .array([2])]), .table(["a": .table(["b": 1])])] {
                lua.push(value)
                XCTAssertEqual(lua.value(at: -1), value)
                lua.pop()
            }
        }
    }

    func testJSONInsideLua() throws {
        assertBalanced("json success and failure") {
            _ = try lua.run(#"return json.encode({a = {1, 2}}), json.decode('{"a":[1,2]}')"#)
            _ = try? lua.run("return json.encode({f = print})")
            _ = try? lua.run("return json.decode('[1, 2')")
            _ = try? lua.run("return json.decode(('['):rep(2000))")
        }
        // Failures caught inside Lua do not pile up on the Lua stack either.
        XCTAssertEqual(try lua.run("""
            for i = 1, 5000 do
              pcall(json.encode, {1, {2, {f = print}}})
              pcall(json.decode, '[1, [2, {"a": [3,')
            end
            return select('#', json.decode('[1]'))
            """), [1])
    }

    /// `encodeJSON(at:)` is the Swift entry point (used to send tables to pages).
    func testEncodeJSONFromSwift() throws {
        try lua.run("good = {a = {1, 2}, b = 'x'} bad = {list = {1, {f = print}}} cyclic = {} cyclic.inner = {cyclic}")
        for (name, succeeds) in [("good", true), ("bad", false), ("cyclic", false)] {
            try lua.load("return \(name)", name: "=get")
            try lua.call(arguments: 0, results: 1)
            assertBalanced("encodeJSON(at:) of \(name)") {
                switch lua.encodeJSON(at: -1) {
                case .success(let bytes): XCTAssert(succeeds, name); XCTAssertEqual(String(decoding: bytes, as: UTF8.self), #"{"a":[1,2],"b":"x"}"#)
                case .failure: XCTAssertFalse(succeeds, name)
                }
            }
            lua.pop()
        }
    }

    /// A host function called from a coroutine reads its arguments from, and pushes its
    /// results onto, the coroutine's own stack, not the main thread's.
    func testHostFunctionsInsideCoroutines() throws {
        assertBalanced("host functions inside coroutines") {
            XCTAssertEqual(try lua.run("""
                local co = coroutine.wrap(function(x)
                  local text = json.encode({ n = x })
                  coroutine.yield(needsString(text))
                  return json.decode(text).n, needsString("after")
                end)
                local first = co(41)
                local n, after = co()
                return first, n, after, select('#', needsString("main"))
                """), [#"{"n":41}"#, 41, "after", 1])
            let failure = try? lua.run("return coroutine.wrap(function() return needsString({}) end)()", name: "=co")
            XCTAssertNil(failure)
        }
        XCTAssertEqual(try lua.run("""
            local co = coroutine.create(function() return needsString(nil) end)
            return coroutine.resume(co)
            """, name: "=co"), [false, "co:1: bad argument #1 to 'needsString' (string expected, got nil)"])
    }
}
