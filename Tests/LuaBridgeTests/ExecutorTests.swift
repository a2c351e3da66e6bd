import Foundation
import Synchronization
import XCTest
@testable import LuaBridge

/// `LuaExecutor`: one thread owns the state; work runs one piece at a time, in order.
final class ExecutorTests: XCTestCase {
    private final class Overlap: Sendable {
        private let state = Mutex((active: 0, most: 0))
        func enter() { state.withLock { $0.active += 1; $0.most = max($0.most, $0.active) } }
        func exit() { state.withLock { $0.active -= 1 } }
        var most: Int { state.withLock { $0.most } }
    }

    private func integers(_ values: [LuaValue]) -> [Int64] {
        values.compactMap { if case .integer(let n) = $0 { n } else { nil } }
    }

    private func makeExecutor() throws -> LuaExecutor {
        let lua = try LuaState()
        try lua.run("order = {}")
        return LuaExecutor(state: lua)
    }

    func testSubmittedWorkRunsInSubmissionOrder() async throws {
        let executor = try makeExecutor()
        for i in 1 ... 500 {
            executor.submit { lua in _ = try? lua.run("order[#order + 1] = \(i)") }
        }
        let order = await executor.run { lua in lua.global("order") }
        XCTAssertEqual(order, .array((1 ... 500).map { .integer($0) }))
    }

    func testAwaitedRunsInterleavedWithSubmitsKeepTheirOrder() async throws {
        let executor = try makeExecutor()
        for i in 1 ... 50 {
            executor.submit { lua in _ = try? lua.run("order[#order + 1] = 'submit \(i)'") }
            let count = await executor.run { lua in (try? lua.run("order[#order + 1] = 'run \(i)' return #order").first) ?? .nil }
            XCTAssertEqual(count, .integer(Int64(2 * i)))
        }
        let order = await executor.run { lua in lua.global("order") }
        XCTAssertEqual(order, .array((1 ... 50).flatMap { i -> [LuaValue] in [.string("submit \(i)"), .string("run \(i)")] }))
    }

    func testConcurrentRunsExecuteOneAtATime() async throws {
        let executor = try makeExecutor()
        let overlap = Overlap()
        let results = await withTaskGroup(of: LuaValue.self) { group in
            for i in 1 ... 200 {
                group.addTask {
                    await executor.run { lua in
                        overlap.enter()
                        defer { overlap.exit() }
                        let value = (try? lua.run("order[#order + 1] = \(i) local x = 0 for k = 1, 2000 do x = x + k end return #order").first) ?? .nil
                        usleep(100)
                        return value
                    }
                }
            }
            var all: [LuaValue] = []
            for await value in group { all.append(value) }
            return all
        }
        XCTAssertEqual(overlap.most, 1, "two pieces of work ran at the same time")
        // Each run saw the table one longer than the one before it: 1…200, each exactly once.
        XCTAssertEqual(integers(results).sorted(), Array(1 ... 200))
        guard case .array(let order) = await executor.run({ $0.global("order") }) else { return XCTFail() }
        XCTAssertEqual(integers(order).sorted(), Array(1 ... 200))
    }

    func testConcurrentSubmitsFromManyThreads() async throws {
        let executor = try makeExecutor()
        let overlap = Overlap()
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for i in 1 ... 50 {
                executor.submit { lua in
                    overlap.enter()
                    _ = try? lua.run("order[#order + 1] = \(thread * 1000 + i)")
                    overlap.exit()
                }
            }
        }
        guard case .array(let order) = await executor.run({ $0.global("order") }) else { return XCTFail() }
        XCTAssertEqual(order.count, 400)
        XCTAssertEqual(overlap.most, 1)
        // Each thread's own submissions ran in the order it made them.
        for thread in 0 ..< 8 {
            let mine = order.compactMap { value -> Int64? in
                guard case .integer(let n) = value, n / 1000 == Int64(thread) else { return nil }
                return n
            }
            XCTAssertEqual(mine, (1 ... 50).map { Int64(thread * 1000 + $0) })
        }
    }

    func testDelayedSubmitAndRunBlocking() throws {
        let executor = try makeExecutor()
        executor.submit(after: 50) { lua in _ = try? lua.run("order[#order + 1] = 'later'") }
        executor.submit { lua in _ = try? lua.run("order[#order + 1] = 'now'") }
        XCTAssertEqual(try executor.runBlocking { lua in try lua.run("return #order").first }, 1)
        let deadline = Date().addingTimeInterval(2)
        while executor.runBlocking({ lua in (try? lua.run("return #order").first) ?? .nil }) != 2, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        XCTAssertEqual(executor.runBlocking { lua in lua.global("order") }, .array(["now", "later"]))
        XCTAssertThrowsError(try executor.runBlocking { lua in try lua.run("error('from the Lua thread')") }) { error in
            XCTAssertContains((error as? LuaError)?.message, "from the Lua thread")
        }
    }
}
