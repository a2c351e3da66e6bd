import XCTest
@testable import LuaBridge

/// Swift → Lua → Swift copies of every `LuaValue` case.
final class ValueRoundTripTests: XCTestCase {
    var lua: LuaState!

    override func setUpWithError() throws {
        lua = try LuaState()
    }

    /// Through a global and back, and through a Lua function's arguments and results.
    private func roundTrip(_ value: LuaValue, file: StaticString = #filePath, line: UInt = #line) throws {
        lua.setGlobal("v", value)
        XCTAssertEqual(lua.global("v"), value, "via a global", file: file, line: line)
        XCTAssertEqual(try first(lua, "return v"), value, "via run", file: file, line: line)
        guard case .function(let identity) = try first(lua, "return function(...) return ... end") else {
            return XCTFail("not a function", file: file, line: line)
        }
        XCTAssertEqual(try lua.call(identity, [value, "after"]), [value, "after"], "via call", file: file, line: line)
    }

    func testScalars() throws {
        for value: LuaValue in [
            .nil, true, false, 0, 3, -7, .integer(.max), .integer(.min), .integer(1 << 53),
            .number(3.5), .number(-0.25), .number(3.0), .number(9_007_199_254_740_992), .number(1e308),
            .number(.leastNonzeroMagnitude), "", "hello", "a\u{0}b",
        ] {
            try roundTrip(value)
        }
    }

    func testUTF8Strings() throws {
        for text in ["héllo", "😀👩‍👩‍👧", "漢字かなカナ", "Ελληνικά", "\u{10FFFF}"] {
            try roundTrip(.string(text))
        }
        lua.setGlobal("s", "😀漢")
        // In Lua the string is its UTF-8 bytes.
        XCTAssertEqual(try first(lua, "return #s"), .integer(7))
        XCTAssertEqual(try first(lua, "return s == '\\u{1F600}\\u{6F22}'"), true)
    }

    func testIntegersStayIntegersAndFloatsStayFloats() throws {
        let results = try lua.run("return 3, 3.5, 3.0, 2^53, 1 << 53, math.maxinteger, math.mininteger, 7 // 2, 7 / 2")
        XCTAssertEqual(results, [
            .integer(3), .number(3.5), .number(3.0), .number(9_007_199_254_740_992), .integer(1 << 53),
            .integer(.max), .integer(.min), .integer(3), .number(3.5),
        ])
        lua.setGlobal("i", .integer(3))
        lua.setGlobal("f", .number(3))
        XCTAssertEqual(try lua.run("return math.type(i), math.type(f)"), ["integer", "float"])
        lua.setGlobal("big", .integer(.max))
        XCTAssertEqual(try first(lua, "return big == math.maxinteger"), true)
    }

    func testTables() throws {
        try roundTrip(.array([1, "two", .number(3.5), true]))
        try roundTrip(.table(["name": "lunar", "count": 2, "ok": false]))
        try roundTrip(.table([
            "list": .array([.table(["id": 1]), .table(["id": 2, "tags": .array(["a", "b"])])]),
            "nested": .table(["deeper": .table(["deepest": .array([.array([.array(["x"])])])])]),
            "1": "a string key that looks like a number",
        ]))
        lua.setGlobal("t", .table(["list": .array([10, 20, 30])]))
        XCTAssertEqual(try lua.run("return #t.list, t.list[2], t['1']"), [3, 20, .nil])
    }

    func testLuaTablesBecomeArraysOnlyWhenKeysAre1ToN() throws {
        XCTAssertEqual(try first(lua, "return {10, 20, 30}"), .array([10, 20, 30]))
        XCTAssertEqual(try first(lua, "return {1, 2, x = 3}"), .table(["1": 1, "2": 2, "x": 3]))
        XCTAssertEqual(try first(lua, "return {[1] = 'a', [3] = 'c'}"), .table(["1": "a", "3": "c"]))
        XCTAssertEqual(try first(lua, "return {[0] = 'zero', 'one'}"), .table(["0": "zero", "1": "one"]))
        XCTAssertEqual(try first(lua, "return {}"), .table([:]))
    }

    func testFunctionsAreReferencesCallableLater() throws {
        guard case .function(let counter) = try first(lua, "local n = 0 return function(k) n = n + k return n, 'total' end") else {
            return XCTFail("expected a function")
        }
        XCTAssertEqual(try lua.call(counter, [2]), [2, "total"])
        try lua.run("collectgarbage() collectgarbage()")  // the registry keeps the closure alive
        XCTAssertEqual(try lua.call(counter, [3]), [5, "total"])

        // Handed back to Lua, it is the same closure.
        lua.setGlobal("counter", .function(counter))
        XCTAssertEqual(try first(lua, "return (counter(10))"), 15)
        XCTAssertEqual(try lua.call(counter, [0]), [15, "total"])

        // A function that raises does not spoil the reference.
        guard case .function(let picky) = try first(lua, "return function(x) assert(x, 'need x') return x end") else {
            return XCTFail("expected a function")
        }
        XCTAssertThrowsError(try lua.call(picky, []))
        XCTAssertEqual(try lua.call(picky, ["ok"]), ["ok"])
    }

    func testDroppedReferencesAreReleased() throws {
        try lua.run("collectgarbage() collectgarbage()")
        let before = try first(lua, "return collectgarbage('count')")
        for _ in 0 ..< 2000 {
            _ = try first(lua, "local s = ('x'):rep(1000) .. math.random() return function() return s end")
        }
        try lua.run("collectgarbage() collectgarbage()")  // releases the dropped slots, then collects
        try lua.run("collectgarbage() collectgarbage()")
        let after = try first(lua, "return collectgarbage('count')")
        guard case .number(let b) = before, case .number(let a) = after else { return XCTFail("\(before) \(after)") }
        XCTAssertLessThan(a - b, 200, "KiB still held after dropping 2000 references")
    }

}
