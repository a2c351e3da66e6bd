import Foundation
import XCTest
@testable import LuaBridge

/// Deep and cyclic tables copied between Lua and Swift. A mistake here overflows the Lua
/// stack and crashes the process, so each case runs in a child process (the test binary
/// itself, running one `DeepValueProbes` test) and is judged by how that process ended.
final class DeepValueTests: XCTestCase {
    private func assertPassesInItsOwnProcess(_ probe: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let binary = try XCTUnwrap(Bundle.main.executableURL ?? URL(string: "file://" + CommandLine.arguments[0]))
        let process = Process()
        process.executableURL = binary
        process.arguments = ["LuaBridgeTests.DeepValueProbes/\(probe)"]
        process.environment = ProcessInfo.processInfo.environment.merging([DeepValueProbes.variable: "1"]) { $1 }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("lunar-probe-\(UUID()).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let output = try FileHandle(forWritingTo: log)
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        let hung = process.isRunning
        if hung {
            kill(process.processIdentifier, SIGKILL)  // memory corruption can also mean a hang
            process.waitUntilExit()
        }
        try output.close()
        let text = String(decoding: (try? Data(contentsOf: log)) ?? Data(), as: UTF8.self)
        let ran = text.contains("Executed 1 test")
        let failures = text.split(separator: "\n").filter { $0.contains("error:") }.joined(separator: "\n")
        XCTAssert(
            process.terminationReason == .exit && process.terminationStatus == 0 && ran,
            hung ? "\(probe) hung (killed after 5 s)" : process.terminationReason == .uncaughtSignal
                ? "\(probe) crashed the process (signal \(process.terminationStatus))"
                : "\(probe) failed:\n\(failures.isEmpty ? String(text.suffix(1500)) : failures)",
            file: file, line: line)
    }

    func testDeepTablesFromLua() throws { try assertPassesInItsOwnProcess("testDeepTablesFromLua") }
    func testDeepValuesIntoLua() throws { try assertPassesInItsOwnProcess("testDeepValuesIntoLua") }
    func testSelfReferencingTable() throws { try assertPassesInItsOwnProcess("testSelfReferencingTable") }
    func testCyclesAreNotUnrolled() throws { try assertPassesInItsOwnProcess("testCyclesAreNotUnrolled") }
}

/// The cases of `DeepValueTests`; they run only in the child process it starts.
final class DeepValueProbes: XCTestCase {
    static let variable = "LUNAR_DEEP_VALUE_PROBE"
    private var isChild: Bool { ProcessInfo.processInfo.environment[Self.variable] != nil }

    private func depth(of value: LuaValue) -> Int {
        switch value {
        case .array(let items): 1 + (items.first.map(depth) ?? 0)
        case .table(let fields): 1 + (fields.values.map(depth).max() ?? 0)
        default: 0
        }
    }

    private func tables(in value: LuaValue) -> Int {
        switch value {
        case .table(let fields): 1 + fields.values.map(tables).reduce(0, +)
        case .array(let items): 1 + items.map(tables).reduce(0, +)
        default: 0
        }
    }

    /// value(at:) of tables nested 60 deep (and of deeper ones, cut at its depth limit).
    func testDeepTablesFromLua() throws {
        guard isChild else { return }
        let lua = try LuaState()
        let nest = "local t = {'leaf'} for i = 2, N do t = {t} end return t"
        XCTAssertEqual(depth(of: try first(lua, nest.replacingOccurrences(of: "N", with: "60"))), 60)
        XCTAssertLessThanOrEqual(depth(of: try first(lua, nest.replacingOccurrences(of: "N", with: "5000"))), 101)
        XCTAssertEqual(try first(lua, "return 'still fine'"), "still fine")
    }

    /// push(_:) of Swift values nested 200 deep.
    func testDeepValuesIntoLua() throws {
        guard isChild else { return }
        let lua = try LuaState()
        var value: LuaValue = "leaf"
        for i in 0 ..< 200 { value = i % 2 == 0 ? .array([value]) : .table(["k": value]) }
        lua.setGlobal("deep", value)
        XCTAssertEqual(try first(lua, """
            local d, t = 0, deep
            while type(t) == 'table' do d = d + 1 t = t[1] or t.k end
            return d
            """), 200)
    }

    func testSelfReferencingTable() throws {
        guard isChild else { return }
        let lua = try LuaState()
        let copy = try first(lua, "local t = {name = 'me'} t.me = t return t")
        guard case .table(let fields) = copy else { return XCTFail("\(copy)") }
        XCTAssertEqual(fields["name"], "me")
    }

    /// A table that refers to itself more than once (a doubly linked list, an object with two
    /// back-pointers) must be copied once, not once per path up to the depth limit: with the
    /// cycle at the top that is 2^100 copies, a hang. Here the cycle sits at depth 88 so that
    /// the probe ends: a cycle-aware copy has about 90 tables, an unrolling one over 8000.
    func testCyclesAreNotUnrolled() throws {
        guard isChild else { return }
        let lua = try LuaState()
        let copy = try first(lua, """
            local root = {}
            local node = root
            for i = 1, 88 do node.next = {} node = node.next end
            node.a = node
            node.b = node
            return root
            """)
        XCTAssertLessThan(tables(in: copy), 200)
    }
}
