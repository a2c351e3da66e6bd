/// Content types by file extension; JavaScript modules are `text/javascript` (RFC 9239).
enum MimeTypes {
    static let byExtension: [String: String] = [
        "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8",
        "js": "text/javascript; charset=utf-8", "mjs": "text/javascript; charset=utf-8",
        "cjs": "text/javascript; charset=utf-8", "jsx": "text/javascript; charset=utf-8",
        "ts": "text/javascript; charset=utf-8", "tsx": "text/javascript; charset=utf-8",
        "css": "text/css; charset=utf-8", "json": "application/json; charset=utf-8",
        "map": "application/json; charset=utf-8", "webmanifest": "application/manifest+json",
        "txt": "text/plain; charset=utf-8", "md": "text/markdown; charset=utf-8",
        "xml": "application/xml", "svg": "image/svg+xml", "png": "image/png",
        "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp",
        "avif": "image/avif", "ico": "image/x-icon", "bmp": "image/bmp",
        "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf",
        "wasm": "application/wasm", "pdf": "application/pdf", "zip": "application/zip",
        "mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg", "mp4": "video/mp4",
        "webm": "video/webm", "csv": "text/csv; charset=utf-8", "lua": "text/plain; charset=utf-8",
    ]

    static let fallback = "application/octet-stream"

    /// A MIME type from an extension ("js", ".js") or a MIME type given as it is ("text/x-foo").
    static func resolve(_ typeOrExtension: String) -> String {
        if typeOrExtension.utf8.contains(UInt8(ascii: "/")) { return typeOrExtension }
        let key = typeOrExtension.hasPrefix(".") ? String(typeOrExtension.dropFirst()) : typeOrExtension
        return byExtension[key.lowercased()] ?? fallback
    }

    static func isHTML(_ type: String) -> Bool { type.hasPrefix("text/html") }

    static func isJavaScript(_ type: String) -> Bool {
        type.hasPrefix("text/javascript") || type.hasPrefix("application/javascript")
    }
}
