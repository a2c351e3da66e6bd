import XCTest
@testable import LuaBridge

/// Every entry into Lua runs under a time budget.
final class BudgetTests: XCTestCase {
    private func timed(_ body: () throws -> Void) -> Double {
        let start = Date()
        try? body()
        return Date().timeIntervalSince(start)
    }

    func testRunawayLoopIsStoppedNamingChunkAndLine() throws {
        let lua = try LuaState(budgetMilliseconds: 100)
        var caught: LuaError?
        let elapsed = timed { caught = failure(lua, "local n = 0\nwhile true do n = n + 1 end", name: "=spin") }
        let error = try XCTUnwrap(caught)
        XCTAssertEqual(error.kind, .timeout)
        XCTAssert(error.message.hasPrefix("spin:2:"), error.message)
        XCTAssertContains(error.message, "time budget of 100 ms")
        XCTAssertGreaterThanOrEqual(elapsed, 0.09)
        XCTAssertLessThan(elapsed, 0.5)

        // The state is still usable, with a fresh budget each time.
        XCTAssertEqual(try first(lua, "return 1 + 1"), 2)
        XCTAssertEqual(failure(lua, "while true do end", name: "@plugins/loop.lua")?.kind, .timeout)
        XCTAssertEqual(try first(lua, "local s = 0 for i = 1, 1000 do s = s + i end return s"), 500500)
    }

    func testRunawayFunctionCalledThroughAReferenceIsStopped() throws {
        let lua = try LuaState(budgetMilliseconds: 100)
        guard case .function(let spin) = try first(lua, "return function() while true do end end", name: "=ref") else {
            return XCTFail()
        }
        for _ in 0 ..< 2 {
            var caught: Error?
            let elapsed = timed { do { try lua.call(spin, []) } catch { caught = error } }
            XCTAssertEqual((caught as? LuaError)?.kind, .timeout)
            XCTAssertContains((caught as? LuaError)?.message, "ref:1:")
            XCTAssertLessThan(elapsed, 0.5)
        }
    }

    func testPcallDoesNotEscapeTheBudget() throws {
        let lua = try LuaState(budgetMilliseconds: 100)
        // One runaway call under pcall is stopped: either pcall sees the timeout, or the
        // timeout goes on up to the caller.
        var outcome = ""
        var elapsed = timed {
            do {
                outcome = try lua.run("return select(2, pcall(function() while true do end end))", name: "=inner").first?.string ?? ""
            } catch let error as LuaError {
                outcome = error.message
            } catch {}
        }
        XCTAssertContains(outcome, "time budget")
        XCTAssertLessThan(elapsed, 0.5)

        // Code that keeps catching the timeout is stopped as a whole. (Bounded to 1 s of CPU
        // time so that the test ends even when the budget can be escaped.)
        var error: LuaError?
        elapsed = timed {
            error = failure(lua, """
                local start = os.clock()
                local caught = 0
                while os.clock() - start < 1 do
                  if not pcall(function() while true do end end) then caught = caught + 1 end
                end
                return 'escaped the budget after catching ' .. caught .. ' timeouts'
                """, name: "=stubborn")
        }
        XCTAssertEqual(error?.kind, .timeout)
        XCTAssertLessThan(elapsed, 0.5)
        XCTAssertEqual(try first(lua, "return 'alive'"), "alive")
    }

    func testRestartBudgetGivesTheRunningEntryAFreshBudget() throws {
        // os.clock() is CPU time and the budget wall time: a rest every 10 ms of CPU stays far
        // inside 250 ms of wall time even on a loaded machine.
        let lua = try LuaState(budgetMilliseconds: 250)
        defineGlobal(lua, "rest") { args throws(LuaArgumentError) in
            args.state.restartBudget()
            return 0
        }
        let code = """
            local start, last = os.clock(), os.clock()
            while os.clock() - start < 0.4 do
              if os.clock() - last > 0.01 then rest() last = os.clock() end
            end
            return 'finished'
            """
        XCTAssertEqual(try first(lua, code), "finished")
        // Without `rest()` the same loop is stopped.
        XCTAssertEqual(failure(lua, code.replacingOccurrences(of: "rest()", with: ""))?.kind, .timeout)
    }

    func testZeroBudgetMeansUnlimited() throws {
        let lua = try LuaState(budgetMilliseconds: 0)
        XCTAssertEqual(try first(lua, "local t = os.clock() while os.clock() - t < 0.15 do end return 'done'"), "done")
    }
}
