import XCTest
@testable import LuaBridge

/// The `json` global, driven from Lua as plugins use it.
final class JSONTests: XCTestCase {
    var lua: LuaState!

    override func setUpWithError() throws {
        lua = try LuaState()
    }

    /// `json.encode(<lua expression>)`.
    private func encode(_ expression: String, file: StaticString = #filePath, line: UInt = #line) throws -> String? {
        try first(lua, "return json.encode(\(expression))").string
    }

    /// The error of `json.encode(<lua expression>)`.
    private func encodeError(_ expression: String, file: StaticString = #filePath, line: UInt = #line) -> String? {
        failure(lua, "return json.encode(\(expression))", file: file, line: line)?.message
    }

    /// The error of `json.decode(text)`, the text handed over from Swift byte for byte.
    private func decodeError(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> String? {
        lua.setGlobal("text", .string(text))
        return failure(lua, "return json.decode(text)", file: file, line: line)?.message
    }

    // MARK: Encoding

    func testEncodesObjectsArraysAndNesting() throws {
        XCTAssertEqual(try encode("{3, 2, 1}"), "[3,2,1]")
        XCTAssertEqual(try encode("{b = 1, a = 2, c = 3}"), #"{"a":2,"b":1,"c":3}"#, "keys are sorted")
        XCTAssertEqual(try encode("{a = 1, b = {true, false}, c = 'x'}"), #"{"a":1,"b":[true,false],"c":"x"}"#)
        XCTAssertEqual(
            try encode("{list = {{id = 1}, {id = 2}}, meta = {empty = json.array({}), none = json.null}}"),
            #"{"list":[{"id":1},{"id":2}],"meta":{"empty":[],"none":null}}"#)
        XCTAssertEqual(try encode("{1, 2, x = 3}"), #"{"1":1,"2":2,"x":3}"#, "not a sequence: an object")
        XCTAssertEqual(try encode("{}"), "{}")
        XCTAssertEqual(try encode("{'a', json.null, 'c'}"), #"["a",null,"c"]"#)
    }

    func testEncodesScalars() throws {
        XCTAssertEqual(try encode("nil"), "null")
        XCTAssertEqual(try encode("json.null"), "null")
        XCTAssertEqual(try encode("true"), "true")
        XCTAssertEqual(try encode("42"), "42")
        XCTAssertEqual(try encode("-7"), "-7")
        XCTAssertEqual(try encode("3.5"), "3.5")
        XCTAssertEqual(try encode("3.0"), "3")
        XCTAssertEqual(try encode("math.maxinteger"), "9223372036854775807")
        XCTAssertEqual(try encode("math.mininteger"), "-9223372036854775808")
        XCTAssertEqual(try encode("'plain'"), #""plain""#)
        XCTAssertEqual(try encode("'😀漢字'"), "\"😀漢字\"", "UTF-8 passes through unescaped")
    }

    func testBigAndSmallNumbersSurviveARoundTrip() throws {
        for number in ["2^53", "2^53 + 1", "1e300", "-1e-300", "0.1 + 0.2", "1/3", "123456789.125", "1e15", "5e-324",
                       "math.maxinteger", "math.mininteger"] {
            XCTAssertEqual(try first(lua, "local x = \(number) return json.decode(json.encode(x)) == x"), true, number)
            // and the text is a JSON number
            let text = try XCTUnwrap(try encode(number))
            XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed) as? NSNumber, text)
        }
        XCTAssertEqual(try first(lua, "return math.type(json.decode(json.encode(math.mininteger)))"), "integer")
    }

    func testEscapes() throws {
        XCTAssertEqual(try encode(#"'"\\\n\t\r\1\31/'"#), #""\"\\\n\t\r\u0001\u001f/""#)
        XCTAssertEqual(try encode(#"'\127'"#), #""\u007f""#)
        XCTAssertEqual(try encode(#"{["a\"b"] = 1}"#), #"{"a\"b":1}"#, "keys are escaped too")
    }

    func testEmptyArraysAndObjectsSurviveARoundTrip() throws {
        XCTAssertEqual(try encode("json.array({})"), "[]")
        XCTAssertEqual(try encode("json.array()"), "[]")
        XCTAssertEqual(try encode("json.array({1, 2})"), "[1,2]")
        XCTAssertEqual(try encode("json.decode('[]')"), "[]")
        XCTAssertEqual(try encode("json.decode('{}')"), "{}")
        XCTAssertEqual(try encode(#"json.decode('{"a":[],"b":{},"c":[[],{}]}')"#), #"{"a":[],"b":{},"c":[[],{}]}"#)
        XCTAssertEqual(try first(lua, "local t = {} return json.array(t) == t"), true, "json.array returns its table")
    }

    func testRefusesNaNAndInfinityNamingJSONEncode() throws {
        for expression in ["0/0", "math.huge", "-math.huge", "{a = {1, 0/0}}"] {
            let message = encodeError(expression)
            XCTAssertContains(message, "json.encode")
            XCTAssertContains(message, expression.contains("0/0") ? "NaN" : "infinite")
        }
    }

    func testRefusesWhatJSONCannotHold() throws {
        XCTAssertContains(encodeError("(function() local t = {} t.self = t return t end)()"), "contains itself")
        XCTAssertContains(encodeError("(function() local t = {} t[1] = {t} return t end)()"), "contains itself")
        XCTAssertContains(encodeError("print"), "cannot encode a function")
        XCTAssertContains(encodeError("{f = print}"), "cannot encode a function")
        XCTAssertContains(encodeError("coroutine.create(print)"), "cannot encode a thread")
        XCTAssertContains(encodeError("io.stdout"), "cannot encode a userdata")
        XCTAssertContains(encodeError("{[true] = 1}"), "boolean keys")
        XCTAssertContains(encodeError(#"'\255\254'"#), "UTF-8")
        XCTAssertContains(encodeError(#"'\192\175'"#), "UTF-8")       // overlong "/"
        XCTAssertContains(encodeError(#"'\237\160\128'"#), "UTF-8")   // an encoded surrogate
        XCTAssertContains(encodeError(#"{['\255'] = 1}"#), "UTF-8")
        XCTAssertContains(failure(lua, "return json.encode()")?.message, "bad argument #1")
        // A shared (not cyclic) table is fine.
        XCTAssertEqual(try encode("(function() local s = {1} return {a = s, b = s} end)()"), #"{"a":[1],"b":[1]}"#)
    }

    func testEncodingDepthIsLimited() throws {
        let nest = "(function(n) local t = {} for i = 1, n - 1 do t = {t} end return t end)"
        XCTAssertEqual(try encode("\(nest)(1000)")?.count, 2000)
        XCTAssertContains(encodeError("\(nest)(1001)"), "deeper than 1000")
        XCTAssertContains(encodeError("\(nest)(100000)"), "deeper than 1000")
    }

    // MARK: Decoding

    func testDecodesObjectsArraysAndNesting() throws {
        try lua.run(#"t = json.decode(' { "a" : [1, 2, {"b": null}], "c": "d", "e": true, "f": false } ')"#)
        XCTAssertEqual(try lua.run("return #t.a, t.a[1], t.a[3].b == json.null, t.c, t.e, t.f"), [3, 1, true, "d", true, false])
        XCTAssertEqual(try first(lua, "return json.decode('null') == json.null"), true)
        XCTAssertEqual(try first(lua, "return json.decode(' \"x\" ')"), "x")
        XCTAssertEqual(try first(lua, #"return json.encode(json.decode('{"b":[1,{"c":null}],"a":"x"}'))"#), #"{"a":"x","b":[1,{"c":null}]}"#)
    }

    func testDecodesNumbers() throws {
        let results = try lua.run(#"""
            local function d(s) local v = json.decode(s) return math.type(v), v end
            return d('3'), d('-0.5'), d('1e2'), d('1E+2'), d('9223372036854775807'), d('-9223372036854775808')
        """#)
        // Only the last call of an expression list keeps all its results.
        XCTAssertEqual(results, ["integer", "float", "float", "float", "integer", "integer", .integer(.min)])
        XCTAssertEqual(try lua.run("return json.decode('3.5'), json.decode('1e2'), json.decode('9223372036854775807')"),
                       [.number(3.5), .number(100), .integer(.max)])
        XCTAssertEqual(try first(lua, "return json.decode('12345678901234567890')"), .number(12_345_678_901_234_567_890))
        XCTAssertEqual(try first(lua, "return json.decode('-0')"), 0)
    }

    func testDecodesEscapesAndUnicode() throws {
        lua.setGlobal("text", #""\"\\\/\b\f\n\r\tA\u0041\u00e9\u4e2d\ud83d\ude00\uD83D\uDE00 😀""#)
        XCTAssertEqual(try first(lua, "return json.decode(text)"), "\"\\/\u{8}\u{c}\n\r\tAAé中😀😀 😀")
        // Decoded text encodes back to the same JSON (modulo escapes JSON does not require).
        XCTAssertEqual(try first(lua, #"return json.encode(json.decode('"\\u0001\\n"'))"#), #""\u0001\n""#)
    }

    func testMalformedInputNamesTheProblemAndItsPosition() throws {
        let cases: [(String, String)] = [
            ("{", "unexpected end at character 2"),
            ("[1,]", "unexpected ']' at character 4"),
            (#"{"a"}"#, "unexpected '}' at character 5"),
            ("tru", "unexpected end at character 4"),
            ("[1] x", "unexpected 'x' at character 5"),
            ("-", "unexpected end at character 2"),
            ("\"a\u{1}b\"", "control character in string at character 3"),
            ("", "unexpected end at character 1"),
            ("[1 2]", "unexpected '2' at character 4"),
            ("01", "unexpected '1' at character 2"),
            (#"{"a":1,}"#, "unexpected '}' at character 8"),
            ("'x'", "unexpected ''' at character 1"),
            (#""abc"#, "unfinished string"),
            (#""\x""#, "bad escape"),
            (#""\u12""#, "escape"),
            ("1.", "at character 3"),
            ("nul", "at character 4"),
        ]
        for (text, expected) in cases {
            let message = decodeError(text)
            XCTAssertContains(message, "invalid JSON")
            XCTAssertContains(message, expected)
        }
        XCTAssertContains(decodeError("[1,"), "'json.decode'")
        XCTAssertContains(failure(lua, "return json.decode(nil)")?.message, "bad argument #1")
        XCTAssertContains(failure(lua, "return json.decode({})")?.message, "string expected, got table")
    }

    /// JSON text is UTF-8: a Lua string with other bytes in a JSON string is refused, with
    /// or without escapes around them; valid multi-byte text passes.
    func testInvalidUTF8InsideStringsIsRefused() throws {
        for chunk in [#"return json.decode('["a\xff"]')"#, #"return json.decode('{"k\xc3": 1}')"#,
                      #"return json.decode('"\\n\xed\xa0\x80"')"#] {
            XCTAssertContains(failure(lua, chunk)?.message, "not valid UTF-8")
        }
        XCTAssertEqual(try lua.run(#"return json.decode('["h\xc3\xa9 \xe2\x9c\x93", "\\t\xf0\x9f\x8c\x99"]')[2]"#),
                       ["\t🌙"])
    }

    func testDecodingDepthIsLimitedWithoutCrashing() throws {
        XCTAssertEqual(try first(lua, "return #json.encode(json.decode(('['):rep(1000) .. (']'):rep(1000)))"), 2000)
        XCTAssertContains(failure(lua, "return json.decode(('['):rep(1001) .. (']'):rep(1001))")?.message, "nested deeper than 1000")
        XCTAssertContains(failure(lua, #"return json.decode(('{"a":'):rep(1001) .. '1' .. ('}'):rep(1001))"#)?.message, "nested deeper than 1000")
        XCTAssertContains(failure(lua, "return json.decode(('['):rep(1000000))")?.message, "invalid JSON")
        XCTAssertEqual(try first(lua, "return json.encode(json.decode('[1]'))"), "[1]", "still usable")
    }

    func testLargeDocumentsRoundTrip() throws {
        let results = try lua.run("""
            local t = {}
            for i = 1, 100000 do t[i] = {id = i, name = 'item ' .. i, tags = json.array({})} end
            local text = json.encode(t)
            local back = json.decode(text)
            return #back, back[100000].name, json.encode(back) == text
            """)
        XCTAssertEqual(results, [100_000, "item 100000", true])
    }
}
