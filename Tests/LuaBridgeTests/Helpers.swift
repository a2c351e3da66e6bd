import XCTest
@testable import LuaBridge

/// Runs `code` and returns its first result (`.nil` if none).
func first(_ lua: LuaState, _ code: String, name: String = "=test") throws -> LuaValue {
    try lua.run(code, name: name).first ?? .nil
}

/// Runs `code`, which must fail, and returns its error.
func failure(
    _ lua: LuaState, _ code: String, name: String = "=test",
    file: StaticString = #filePath, line: UInt = #line
) -> LuaError? {
    do {
        let results = try lua.run(code, name: name)
        XCTFail("expected an error from \(code), got \(results)", file: file, line: line)
        return nil
    } catch {
        return error
    }
}

/// Defines a global Swift host function.
func defineGlobal(
    _ lua: LuaState, _ name: String,
    _ body: @escaping (LuaArguments) throws(LuaArgumentError) -> Int32
) {
    lua.push(function: name, body)
    let function = lua.value(at: -1)
    lua.pop()
    lua.setGlobal(name, function)
}

func XCTAssertContains(_ text: String?, _ part: String, file: StaticString = #filePath, line: UInt = #line) {
    guard let text else { return XCTFail("no text (expected it to contain \(part))", file: file, line: line) }
    XCTAssert(text.contains(part), "\(text.debugDescription) does not contain \(part.debugDescription)", file: file, line: line)
}
