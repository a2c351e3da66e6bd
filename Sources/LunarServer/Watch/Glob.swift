/// Glob patterns for the config's `ignore`: `*` and `?` within a path segment, `**` across
/// segments; a pattern without `/` matches a name at any depth ("*.log").
struct Glob: Sendable {
    let pattern: [UInt8]
    let anyDepth: Bool

    init(_ pattern: String) {
        var text = pattern.hasPrefix("./") ? String(pattern.dropFirst(2)) : pattern
        if text.hasSuffix("/") { text += "**" }
        self.pattern = Array(text.utf8)
        anyDepth = !text.contains("/")
    }

    /// `path` is relative to the root, without a leading `/`.
    func matches(_ path: String) -> Bool {
        let bytes = Array(path.utf8)
        if Self.match(pattern[...], bytes[...]) { return true }
        // "dist/**" also ignores the folder "dist" itself.
        if pattern.count > 3, pattern.suffix(3) == Array("/**".utf8), Self.match(pattern.dropLast(3), bytes[...]) { return true }
        if anyDepth, let name = path.split(separator: "/").last { return Self.match(pattern[...], Array(name.utf8)[...]) }
        return false
    }

    private static func match(_ pattern: ArraySlice<UInt8>, _ text: ArraySlice<UInt8>) -> Bool {
        guard let first = pattern.first else { return text.isEmpty }
        let star = UInt8(ascii: "*"), slash = UInt8(ascii: "/")
        if first == star {
            let rest = pattern.dropFirst()
            if rest.first == star {
                // "**" (and "**/"): any number of whole segments
                var tail = rest.dropFirst()
                if tail.first == slash { tail = tail.dropFirst() }
                var candidate = text
                while true {
                    if match(tail, candidate) { return true }
                    guard !candidate.isEmpty else { return false }
                    candidate = candidate.dropFirst()
                }
            }
            var candidate = text
            while true {
                if match(rest, candidate) { return true }
                guard let next = candidate.first, next != slash else { return false }
                candidate = candidate.dropFirst()
            }
        }
        guard let head = text.first else { return false }
        if first == UInt8(ascii: "?") ? head != slash : head == first {
            return match(pattern.dropFirst(), text.dropFirst())
        }
        return false
    }
}
