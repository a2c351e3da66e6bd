import XCTest
@testable import LuaBridge

/// The capped allocator: running out of memory is a Lua error, never a crash.
final class MemoryTests: XCTestCase {
    private let limit = 8 << 20

    func testRunawayAllocationIsAnErrorAndTheStateRecovers() throws {
        let lua = try LuaState(memoryLimit: limit, budgetMilliseconds: 10_000)
        let baseline = lua.memoryUsed
        XCTAssertGreaterThan(baseline, 0)
        let error = try XCTUnwrap(failure(lua, "local t = {} for i = 1, 1e8 do t[i] = ('x'):rep(100) .. i end", name: "=hog"))
        XCTAssert(error.kind == .memory || error.message.contains("not enough memory"), "\(error.kind): \(error.message)")
        let peak = lua.memoryUsed
        XCTAssertLessThanOrEqual(peak, limit)
        XCTAssertGreaterThan(peak, limit / 2, "the table grew to near the cap before failing")

        try lua.run("collectgarbage() collectgarbage()")
        XCTAssertLessThan(lua.memoryUsed, baseline + (1 << 20))
        XCTAssertEqual(try first(lua, "return #(('x'):rep(1000))"), 1000)
        XCTAssertEqual(try first(lua, "return json.encode({ok = true})"), #"{"ok":true}"#)
    }

    func testOneHugeAllocationIsRefused() throws {
        let lua = try LuaState(memoryLimit: limit)
        let error = try XCTUnwrap(failure(lua, "return ('x'):rep(16 * 1024 * 1024)"))
        XCTAssert(error.kind == .memory || error.message.contains("not enough memory"), "\(error.kind): \(error.message)")
        XCTAssertEqual(try first(lua, "return #(('x'):rep(1024 * 1024))"), .integer(1 << 20))
    }

    func testLimitCanBeSetAfterCreation() throws {
        let lua = try LuaState()
        lua.memoryLimit = limit
        let error = failure(lua, "local t = {} for i = 1, 2e5 do t[i] = ('x'):rep(100) .. i end")  // ~25 MB
        XCTAssertNotNil(error)
        lua.memoryLimit = 0
        try lua.run("collectgarbage()")
        XCTAssertNoThrow(try lua.run("local t = {} for i = 1, 2e5 do t[i] = ('x'):rep(100) .. i end"))
    }

    func testMemoryLimitReadsBack() throws {
        let lua = try LuaState(memoryLimit: limit)
        XCTAssertEqual(lua.memoryLimit, limit)
        lua.memoryLimit = 4 << 20
        XCTAssertEqual(lua.memoryLimit, 4 << 20)
    }

    /// Host functions may allocate past the cap (so a Swift frame never sees a Lua error); once
    /// they return, even by raising an error, the cap applies again.
    func testCapStillAppliesAfterHostFunctionsRaise() throws {
        let lua = try LuaState(memoryLimit: limit)
        defineGlobal(lua, "picky") { args throws(LuaArgumentError) in
            _ = try args.string(1)
            return 0
        }
        XCTAssertEqual(try first(lua, "local n = 0 for i = 1, 100 do if not pcall(picky) then n = n + 1 end end return n"), 100)
        XCTAssertNotNil(failure(lua, "return picky(1)"))
        XCTAssertNotNil(failure(lua, "local t = {} for i = 1, 2e5 do t[i] = ('x'):rep(100) .. i end"), "the cap no longer applies")
    }

    /// At the cap, Swift can still push values (a request for a hook, a message for a handler):
    /// only Lua code running inside a call can fail to allocate, never the bridge between calls.
    func testSwiftCanPushAtTheCap() throws {
        let lua = try LuaState(memoryLimit: limit, budgetMilliseconds: 10_000)
        try lua.run("hoard = {} pcall(function() for i = 1, 1e8 do hoard[i] = ('x'):rep(100) .. i end end)")
        XCTAssertGreaterThan(lua.memoryUsed, limit - (1 << 20))
        let big = String(repeating: "y", count: 1 << 20)
        let base = lua.top
        lua.push(.table(["body": .string(big), "list": .array((1 ... 1000).map { .integer($0) })]))
        XCTAssertEqual(lua.top, base + 1)
        lua.pop()
        XCTAssertNotNil(failure(lua, "hoard.more = ('z'):rep(4 << 20)"), "the cap applies again inside Lua")
        try lua.run("hoard = nil collectgarbage()")
        XCTAssertLessThan(lua.memoryUsed, limit / 2)
    }
}
