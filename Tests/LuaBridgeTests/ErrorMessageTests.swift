import XCTest
@testable import LuaBridge

/// Errors come back as `LuaError`s that say where they happened.
final class ErrorMessageTests: XCTestCase {
    var lua: LuaState!

    override func setUpWithError() throws {
        lua = try LuaState()
    }

    func testSyntaxErrorsNameTheChunkAndLine() throws {
        let error = try XCTUnwrap(failure(lua, "local a = 1\nlocal b = = 2", name: "=settings"))
        XCTAssertEqual(error.kind, .syntax)
        XCTAssert(error.message.hasPrefix("settings:2:"), error.message)
        XCTAssertEqual(error.location, "settings:2")

        let fromFile = try XCTUnwrap(failure(lua, "\n\nreturn )", name: "@plugins/chat.lua"))
        XCTAssertEqual(fromFile.kind, .syntax)
        XCTAssert(fromFile.message.hasPrefix("plugins/chat.lua:3:"), fromFile.message)
    }

    func testRuntimeErrorsNameFileAndLineWithATraceback() throws {
        let code = """
            local function inner(t)
              return t.field.missing
            end
            local function outer() local value = inner({}) return value end
            local result = outer()
            return result
            """
        let error = try XCTUnwrap(failure(lua, code, name: "@plugins/demo.lua"))
        XCTAssertEqual(error.kind, .runtime)
        XCTAssert(error.message.hasPrefix("plugins/demo.lua:2: attempt to index a nil value"), error.message)
        XCTAssertEqual(error.location, "plugins/demo.lua:2")
        XCTAssert(error.traceback.hasPrefix("stack traceback:"), error.traceback)
        XCTAssertContains(error.traceback, "plugins/demo.lua:2: in ")
        XCTAssertContains(error.traceback, "plugins/demo.lua:4: in ")
        XCTAssertFalse(error.message.contains("stack traceback"), "the traceback is split off the message")

        let raised = try XCTUnwrap(failure(lua, "\nerror('boom')", name: "=thrower"))
        XCTAssertEqual(raised.message, "thrower:2: boom")
        XCTAssertEqual(raised.kind, .runtime)

        let table = try XCTUnwrap(failure(lua, "error({code = 1})"))
        XCTAssertEqual(table.message, "(error object is a table value)")
    }

    func testFileErrors() throws {
        XCTAssertThrowsError(try lua.load(file: "/nonexistent/lunar/plugin.lua")) { error in
            XCTAssertEqual((error as? LuaError)?.kind, .file)
            XCTAssertContains((error as? LuaError)?.message, "/nonexistent/lunar/plugin.lua")
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lunar-test-\(UUID()).lua").path
        try "return 1 +".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try lua.load(file: path)) { error in
            XCTAssertEqual((error as? LuaError)?.kind, .syntax)
            XCTAssertContains((error as? LuaError)?.message, "\(path):1:")
        }
    }

    func testHostFunctionArgumentErrorsNameFunctionAndArgument() throws {
        defineGlobal(lua, "greet") { args throws(LuaArgumentError) in
            let name = try args.string(1)
            let times = try args.optionalInteger(2) ?? 1
            args.state.push(.string(Array(repeating: "hi \(name)", count: Int(times)).joined(separator: ", ")))
            return 1
        }
        XCTAssertEqual(try first(lua, "return greet('ann', 2)"), "hi ann, hi ann")

        let missing = try XCTUnwrap(failure(lua, "\nreturn greet(nil)", name: "=caller"))
        XCTAssertEqual(missing.kind, .runtime)
        XCTAssertEqual(missing.message, "caller:2: bad argument #1 to 'greet' (string expected, got nil)")
        XCTAssertEqual(failure(lua, "return greet()", name: "=c")?.message, "c:1: bad argument #1 to 'greet' (string expected, got no value)")
        XCTAssertEqual(failure(lua, "return greet('x', 1.5)", name: "=c")?.message, "c:1: bad argument #2 to 'greet' (number has no integer representation)")
        XCTAssertEqual(failure(lua, "return greet('x', {})", name: "=c")?.message, "c:1: bad argument #2 to 'greet' (number expected, got table)")

        defineGlobal(lua, "refuse") { _ throws(LuaArgumentError) in throw LuaArgumentError("not today") }
        XCTAssertEqual(failure(lua, "refuse()", name: "=c")?.message, "c:1: refuse: not today")
    }

    /// The Swift function only returns; the C trampoline raises the error, so Lua can catch it.
    func testThrowingHostFunctionsCanBeCaughtWithPcall() throws {
        var calls = 0
        defineGlobal(lua, "strict") { args throws(LuaArgumentError) in
            calls += 1
            let n = try args.integer(1)
            args.state.push(.integer(n * 2))
            return 1
        }
        XCTAssertEqual(try lua.run("return pcall(strict, 'no')"), [false, "bad argument #1 to 'strict' (number expected, got string)"])
        XCTAssertEqual(try lua.run("return pcall(function() return strict(true) end)", name: "=wrap"),
                       [false, "wrap:1: bad argument #1 to 'strict' (number expected, got boolean)"])
        XCTAssertEqual(try lua.run("return pcall(strict, 21)"), [true, 42])
        // Many caught errors in a row, inside a coroutine too: nothing leaks, nothing crashes.
        let results = try lua.run("""
            local failures = 0
            for i = 1, 10000 do
              if not pcall(strict, nil) then failures = failures + 1 end
            end
            local co = coroutine.wrap(function() return pcall(strict, {}) end)
            local ok = co()
            return failures, ok, strict(5)
            """)
        XCTAssertEqual(results, [10000, false, 10])
        XCTAssertEqual(calls, 10005)
        XCTAssertEqual(try first(lua, "return (select('#', strict(1)))"), 1)
    }
}
