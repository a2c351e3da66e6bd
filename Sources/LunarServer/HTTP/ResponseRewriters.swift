import Foundation

/// Lunar's own rewrites of what it serves: the WebSocket client script injected into full
/// HTML pages, and a working `import.meta.hot` in modules that mention it.
enum ResponseRewriters {
    static let clientPath = "/__web-dev-server__web-socket.js"
    static let scriptTag = Array(#"<script type="module" src="/__web-dev-server__web-socket.js"></script>"#.utf8)
    static let hotPrelude = Array(
        (#"import { createHotContext as __lunar_hot } from "/__web-dev-server__web-socket.js"; "#
            + "import.meta.hot = __lunar_hot(import.meta.url);\n").utf8
    )

    /// A full page has a doctype, `<html>`, `<head>` or `<body>`; fragments are left alone.
    static func isFullPage(_ lowered: [UInt8]) -> Bool {
        ["<!doctype", "<html", "<head", "<body"].contains { range(of: Array($0.utf8), in: lowered, last: false) != nil }
    }

    /// Inserts the client script before `</body>`, else `</head>`, else at the end; nil for fragments.
    static func injectClient(into html: [UInt8]) -> [UInt8]? {
        let lowered = html.map { (65 ... 90).contains($0) ? $0 + 32 : $0 }
        guard isFullPage(lowered) else { return nil }
        let position = range(of: Array("</body>".utf8), in: lowered, last: true)
            ?? range(of: Array("</head>".utf8), in: lowered, last: true) ?? html.count
        var result = html
        result.insert(contentsOf: scriptTag, at: position)
        return result
    }

    /// Gives a module that mentions `import.meta.hot` a working one, bound to the WebSocket client.
    static func addHotContext(to module: [UInt8]) -> [UInt8]? {
        guard range(of: Array("import.meta.hot".utf8), in: module, last: false) != nil else { return nil }
        return hotPrelude + module
    }

    /// The offset of the first (or last) occurrence of `needle`.
    static func range(of needle: [UInt8], in haystack: [UInt8], last: Bool) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        let limit = haystack.count - needle.count
        return haystack.withUnsafeBufferPointer { hay in
            func matches(_ offset: Int) -> Bool {
                hay[offset] == needle[0] && needle.indices.allSatisfy { hay[offset + $0] == needle[$0] }
            }
            return last ? stride(from: limit, through: 0, by: -1).first(where: matches) : (0 ... limit).first(where: matches)
        }
    }
}
