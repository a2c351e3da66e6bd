import Foundation
import NIOCore
import Synchronization

/// The served root's files, read once and kept in memory until they change on disk (checked
/// with one `stat` per request), so a dev page's hundreds of small modules cost no reads.
/// A file is served only if its real path, symbolic links resolved, is inside the root.
final class FileStore: Sendable {
    enum Lookup {
        case file(StoredFile)
        case directory
        case missing
        /// Outside the root through a symbolic link, or unreadable.
        case forbidden
        /// A file not in memory (or changed since), when only cached files were asked for.
        case notCached
    }

    /// One file's bytes and the tag of those bytes.
    final class StoredFile: Sendable {
        let body: ByteBuffer
        let etag: String
        /// The `Content-Type` its extension gives.
        let type: String
        /// The file's modification time as an HTTP date.
        let lastModified: String
        fileprivate let identity: Identity
        /// The page or module after Lunar's own rewrites (injection, import.meta.hot), made once.
        /// Index 0: with `import.meta.hot`; 1: with the client script injected.
        let rewritten = Mutex<[(ByteBuffer, String)?]>([nil, nil])

        fileprivate init(body: ByteBuffer, identity: Identity, fileExtension: String) {
            self.body = body
            self.etag = ETag.of(body)
            self.identity = identity
            self.type = MimeTypes.resolve(fileExtension)
            self.lastModified = HTTPDate.format(seconds: Int(identity.modified / 1_000_000_000))
        }
    }

    fileprivate struct Identity: Equatable {
        let device: UInt64, inode: UInt64, size: Int64, modified: Int64
    }

    let root: String
    private let cache = Mutex<[String: StoredFile]>([:])
    private static let largestCached = 16 << 20

    /// - Parameter root: an existing folder; kept as its real path.
    init(root: String) {
        self.root = Self.realPath(root) ?? root
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The file at `segments` (already canonical, see ``RequestPath``). With `cachedOnly`, a
    /// file that is not in memory is not read (the caller must not block on the disk).
    func lookup(_ segments: [String], cachedOnly: Bool = false) -> Lookup {
        let path = segments.isEmpty ? root : root + "/" + segments.joined(separator: "/")
        var info = stat()
        guard stat(path, &info) == 0 else { return .missing }
        if (info.st_mode & S_IFMT) == S_IFDIR { return .directory }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return .forbidden }
        let identity = Identity(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
            modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        )
        if let stored = cache.withLock({ $0[path] }), stored.identity == identity {
            return .file(stored)
        }
        if cachedOnly { return .notCached }
        guard let real = Self.realPath(path), real.hasPrefix(root + "/") else { return .forbidden }
        guard let data = FileManager.default.contents(atPath: real) else { return .forbidden }
        let stored = StoredFile(
            body: ByteBuffer(bytes: data), identity: identity,
            fileExtension: (segments.last.map { ($0 as NSString).pathExtension } ?? "").lowercased()
        )
        if data.count <= Self.largestCached {
            cache.withLock { $0[path] = stored }
        }
        return .file(stored)
    }

    /// Forgets everything (after a burst of changes on disk).
    func invalidate() { cache.withLock { $0.removeAll() } }
}

/// Dates as HTTP writes them (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
enum HTTPDate {
    static func format(seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 40)
        let length = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Now, formatted at most once a second.
    static func now() -> String {
        let seconds = Int(time(nil))
        if let text = cache.withLock({ $0.seconds == seconds ? $0.text : nil }) { return text }
        let text = format(seconds: seconds)
        cache.withLock { $0 = (seconds, text) }
        return text
    }

    private static let cache = Mutex<(seconds: Int, text: String)>((0, ""))
}

/// Conditional GET (RFC 9110 §13.2.2): `If-None-Match` decides when present, else an
/// `If-Modified-Since` equal to the `Last-Modified` sent.
enum Revalidation {
    static func isFresh(ifNoneMatch: String?, ifModifiedSince: String?, etag: String, lastModified: String?) -> Bool {
        if let ifNoneMatch { return ETag.matches(ifNoneMatch, etag) }
        guard let ifModifiedSince, let lastModified else { return false }
        return ifModifiedSince.trimmingCharacters(in: .whitespaces) == lastModified
    }
}

/// Strong entity tags from the bytes served (FNV-1a, 64 bits): cheap, and equal bodies match.
enum ETag {
    static func of(_ buffer: ByteBuffer) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        buffer.withUnsafeReadableBytes { bytes in
            for byte in bytes {
                hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            }
        }
        return "\"\(String(hash, radix: 36))-\(String(buffer.readableBytes, radix: 36))\""
    }

    /// True when an `If-None-Match` value names `etag` (or is `*`).
    static func matches(_ header: String?, _ etag: String) -> Bool {
        guard let header else { return false }
        if header.trimmingCharacters(in: .whitespaces) == "*" { return true }
        return header.split(separator: ",").contains { candidate in
            var tag = candidate.trimmingCharacters(in: .whitespaces)
            if tag.hasPrefix("W/") { tag.removeFirst(2) }
            return tag == etag
        }
    }
}
