/// The one canonicalisation every file read goes through (SPEC §5): the raw request target
/// becomes a list of safe path segments under the root, or is refused.
///
/// ```swift
/// let path = try RequestPath(target: "/app/%E2%9C%93.js?x=1")
/// // path.segments == ["app", "✓.js"], path.query == "x=1"
/// ```
struct RequestPath: Equatable {
    enum Refusal: Error, Equatable {
        /// Malformed: bad percent-encoding, NUL, `\`, a raw `#`.
        case badRequest(String)
        /// Leaves the root, or names a protected file.
        case forbidden(String)
    }

    /// Decoded, without empty and `.` segments, `..` resolved.
    let segments: [String]
    /// The decoded path with its leading `/` (and a trailing `/` when the request had one).
    let path: String
    /// The raw query, without `?`.
    let query: String
    let hasTrailingSlash: Bool

    init(target: String) throws(Refusal) {
        let raw = target.utf8
        if raw.contains(UInt8(ascii: "#")) { throw .badRequest("a raw '#' in the request target") }
        let pathPart: Substring
        if let mark = target.firstIndex(of: "?") {
            pathPart = target[..<mark]
            query = String(target[target.index(after: mark)...])
        } else {
            pathPart = Substring(target)
            query = ""
        }
        guard pathPart.hasPrefix("/") else { throw .badRequest("the path must start with '/'") }
        guard let decoded = Self.percentDecode(pathPart) else { throw .badRequest("bad percent-encoding") }
        if decoded.utf8.contains(0) { throw .badRequest("NUL in the path") }
        if decoded.utf8.contains(UInt8(ascii: "\\")) { throw .badRequest("'\\' in the path") }

        var segments: [String] = []
        for segment in decoded.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..":
                if segments.isEmpty { throw .forbidden("the path leaves the root") }
                segments.removeLast()
            default: segments.append(String(segment))
            }
        }
        for (index, segment) in segments.enumerated() {
            // Only names starting with "." or ending in "m"/"y" can be protected: skip the rest cheaply.
            let isLast = index == segments.count - 1
            let lastLetter = segment.utf8.last.map { $0 | 0x20 }
            guard segment.utf8.first == UInt8(ascii: ".") || (isLast && (lastLetter == UInt8(ascii: "m") || lastLetter == UInt8(ascii: "y")))
            else { continue }
            let lower = segment.lowercased()
            if lower == ".git" || lower.hasPrefix(".env") || (isLast && (lower.hasSuffix(".pem") || lower.hasSuffix(".key"))) {
                throw .forbidden("protected file")
            }
        }
        self.segments = segments
        hasTrailingSlash = decoded.hasSuffix("/") && !segments.isEmpty
        path = "/" + segments.joined(separator: "/") + (hasTrailingSlash ? "/" : "")
    }

    /// Percent-decodes UTF-8; nil when an escape is malformed or the result is not UTF-8.
    static func percentDecode(_ text: Substring) -> String? {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 48 ... 57: byte - 48
        case 65 ... 70: byte - 55
        case 97 ... 102: byte - 87
        default: nil
        }
    }

    /// The decoded query as a table; a malformed escape keeps the raw text.
    var queryItems: [String: String] {
        var items: [String: String] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                let plus = s.replacingOccurrences(of: "+", with: " ")
                return Self.percentDecode(Substring(plus)) ?? String(s)
            }
            items[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return items
    }
}

import Foundation
