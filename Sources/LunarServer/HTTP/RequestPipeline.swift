import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PluginHost

/// The path of every HTTP request (see ARCHITECTURE.md): Host check → canonical path → the
/// client module → plugin `serve` → file, directory index or app index → `transform` and
/// `resolveMimeType` → Lunar's rewrites → ETag / 304. Stages no plugin uses never enter Lua.
struct RequestPipeline: Sendable {
    let host: PluginHost
    let store: FileStore
    let policy: OriginPolicy
    let appIndex: [String]?
    let injectionAllowed: Bool
    let clientModule: ByteBuffer

    func respond(to request: Request) async -> Response {
        let summary = host.summary
        let isHead = request.method == .head
        let target = request.head.path ?? "/"
        let authority = request.head.authority
        guard policy.allows(host: authority) else {
            return Self.text(.forbidden, "403 Forbidden: this server answers only to its own host name, localhost or an IP address.\n")
        }
        let path: RequestPath
        do {
            path = try RequestPath(target: target)
        } catch .badRequest(let why) {
            return Self.text(.badRequest, "400 Bad Request: \(why).\n")
        } catch {
            return Self.text(.forbidden, "403 Forbidden.\n")
        }
        if path.path == ResponseRewriters.clientPath {
            return finalize(request, body: clientModule, etag: nil, lastModified: nil, type: MimeTypes.resolve("js"), status: .ok, headers: [String: String](), isHead: isHead)
        }
        if path.path == "/wds" {
            return Self.text(.upgradeRequired, "426 Upgrade Required: /wds is Lunar's WebSocket endpoint.\n")
        }
        if request.method == .get || isHead, let plain = plainFile(path, summary: summary) {
            return finalize(request, body: plain.body, etag: plain.etag, lastModified: plain.lastModified, type: plain.type, status: .ok, headers: [:], isHead: isHead)
        }

        // What the plugins see of the request, built only when some hook will look at it.
        let context = summary.serve || summary.transform || summary.resolveMimeType
            ? HookRequest(method: request.method.rawValue, path: path.path, url: target, query: path.queryItems, headers: Self.headers(of: request))
            : nil
        var status = HTTPResponse.Status.ok
        var type: String
        var body: ByteBuffer
        var extraHeaders: [String: String] = [:]
        var storedFile: FileStore.StoredFile?

        served: if summary.serve, let context {
            switch await host.serve(context) {
            case .notServed: break served
            case .failed(let message): return Self.text(.internalServerError, "500 Internal Server Error\n\n\(message)\n")
            case .served(let response):
                status = .init(code: response.status)
                type = MimeTypes.resolve(response.type ?? Self.fileExtension(path))
                body = ByteBuffer(bytes: response.body)
                extraHeaders = response.headers
                return await finish(request, summary: summary, context: context, body: body, type: type, status: status, headers: extraHeaders, file: nil, isHead: isHead)
            }
        }
        guard request.method == .get || isHead else {
            return Self.text(.methodNotAllowed, "405 Method Not Allowed: only GET and HEAD reach files.\n")
        }
        switch lookup(path, request: request) {
        case .file(let file):
            storedFile = file
            body = file.body
            type = file.type
        case .response(let response):
            return response
        }
        return await finish(request, summary: summary, context: context, body: body, type: type, status: status, headers: extraHeaders, file: storedFile, isHead: isHead)
    }

    /// A file as Lunar serves it when no plugin hook looks at the request.
    struct PlainFile {
        let body: ByteBuffer
        let etag: String
        let type: String
        /// The file's date, when the body is the file's own bytes (not rewritten).
        let lastModified: String?
    }

    /// For the event loop's ``StaticFileFastPath``: the plain file a raw request target names,
    /// after the checks ``respond(to:)`` makes first (Host, canonical path, Lunar's own paths);
    /// only files already in memory (one not read yet is read off the event loop, by the full path).
    func plainFile(target: String, authority: String?, summary: PluginSummary) -> PlainFile? {
        guard policy.allows(host: authority), let path = try? RequestPath(target: target),
              path.path != ResponseRewriters.clientPath, path.path != "/wds" else { return nil }
        return plainFile(path, summary: summary, cachedOnly: true)
    }

    /// The file a GET or HEAD names when the file store alone answers it: no plugin hook, no
    /// redirect, no error, not the app index. Nil sends the request down the full path.
    private func plainFile(_ path: RequestPath, summary: PluginSummary, cachedOnly: Bool = false) -> PlainFile? {
        guard !summary.serve, !summary.transform, !summary.resolveMimeType else { return nil }
        let file: FileStore.StoredFile
        switch store.lookup(path.segments, cachedOnly: cachedOnly) {
        case .file(let found):
            file = found
        case .directory where path.hasTrailingSlash || path.segments.isEmpty:
            guard case .file(let index) = store.lookup(path.segments + ["index.html"], cachedOnly: cachedOnly) else { return nil }
            file = index
        default:
            return nil
        }
        let (inject, hot) = rewrites(type: file.type, summary: summary)
        let (body, etag) = inject || hot ? rewritten(file, inject: inject) : (file.body, file.etag)
        return PlainFile(body: body, etag: etag, type: file.type, lastModified: etag == file.etag ? file.lastModified : nil)
    }

    /// Lunar's own rewrites a successful body of `type` gets: the client script, `import.meta.hot`.
    private func rewrites(type: String, summary: PluginSummary) -> (inject: Bool, hot: Bool) {
        (injectionAllowed && summary.injectWebSocket && MimeTypes.isHTML(type), MimeTypes.isJavaScript(type))
    }

    private enum Found {
        case file(FileStore.StoredFile)
        /// A redirect or an error.
        case response(Response)
    }

    /// The file for `path`: the file itself, a folder's `index.html`, or the app index.
    private func lookup(_ path: RequestPath, request: Request) -> Found {
        switch store.lookup(path.segments) {
        case .file(let file):
            return .file(file)
        case .directory:
            guard path.hasTrailingSlash || path.segments.isEmpty else {
                let query = path.query.isEmpty ? "" : "?" + path.query
                return .response(Response(status: .movedPermanently, headers: [.location: path.path + "/" + query, .contentLength: "0"]))
            }
            if case .file(let index) = store.lookup(path.segments + ["index.html"]) { return .file(index) }
        case .forbidden:
            return .response(Self.text(.forbidden, "403 Forbidden.\n"))
        case .missing, .notCached:
            break
        }
        if let appIndex, request.method == .get, !(path.segments.last ?? "").contains("."),
           request.headers[.accept]?.contains("text/html") == true,
           case .file(let index) = store.lookup(appIndex) {
            return .file(index)
        }
        return .response(Self.text(.notFound, "404 Not Found: \(path.path)\n"))
    }

    private func finish(
        _ request: Request, summary: PluginSummary, context: HookRequest?, body: ByteBuffer, type: String,
        status: HTTPResponse.Status, headers: [String: String], file: FileStore.StoredFile?, isHead: Bool
    ) async -> Response {
        var body = body
        var type = type
        var headers = headers
        let success = (200 ..< 300).contains(status.code)
        var file = file
        if let context, (summary.transform && success) || summary.resolveMimeType {
            let outcome = await host.finish(
                context, status: status.code, body: Array(buffer: body), type: type,
                transform: summary.transform && success, resolve: summary.resolveMimeType
            )
            switch outcome {
            case .failed(let message):
                return Self.text(.internalServerError, "500 Internal Server Error\n\n\(message)\n")
            case .finished(let newBody, let newHeaders, let resolved):
                if summary.transform && success {
                    body = ByteBuffer(bytes: newBody)
                    file = nil
                }
                headers.merge(newHeaders) { _, new in new }
                if let resolved { type = MimeTypes.resolve(resolved) }
            }
        }
        var etag: String?
        if success {
            let (inject, hot) = rewrites(type: type, summary: summary)
            if let file, inject || hot {
                (body, etag) = rewritten(file, inject: inject)
            } else if inject || hot {
                body = rewrite(body, inject: inject)
            } else {
                etag = file?.etag
            }
        }
        // A date only for the file's own bytes: a rewritten body may change while the file does not.
        let lastModified = file.flatMap { etag == $0.etag ? $0.lastModified : nil }
        return finalize(request, body: body, etag: etag, lastModified: lastModified, type: type, status: status, headers: headers, isHead: isHead)
    }

    /// A stored file's rewritten form, made once per file version.
    private func rewritten(_ file: FileStore.StoredFile, inject: Bool) -> (ByteBuffer, String) {
        let key = inject ? 1 : 0
        if let done = file.rewritten.withLock({ $0[key] }) { return done }  // the common case
        let body = rewrite(file.body, inject: inject)
        let result = (body, ETag.of(body))
        file.rewritten.withLock { $0[key] = result }
        return result
    }

    private func rewrite(_ body: ByteBuffer, inject: Bool) -> ByteBuffer {
        let bytes = Array(buffer: body)
        let changed = inject ? ResponseRewriters.injectClient(into: bytes) : ResponseRewriters.addHotContext(to: bytes)
        return changed.map { ByteBuffer(bytes: $0) } ?? body
    }

    @inline(never)  // works around a Swift 6.3 optimizer crash (SIL ownership verifier) in respond(to:)
    private func finalize(
        _ request: Request, body: ByteBuffer, etag: String?, lastModified: String?, type: String, status: HTTPResponse.Status,
        headers extra: [String: String], isHead: Bool
    ) -> Response {
        var headers: HTTPFields = [.contentType: type, .cacheControl: "no-cache"]
        let success = (200 ..< 300).contains(status.code)
        let tag = success ? (etag ?? ETag.of(body)) : nil
        if let tag { headers[.eTag] = tag }
        if success, let lastModified { headers[.lastModified] = lastModified }
        for (name, value) in extra {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        if let tag, Revalidation.isFresh(
            ifNoneMatch: request.headers[.ifNoneMatch], ifModifiedSince: request.headers[.ifModifiedSince],
            etag: tag, lastModified: success ? lastModified : nil
        ) {
            var response = Response(status: .notModified, headers: headers)
            response.headers[.contentLength] = nil  // a 304 has no body, and says nothing of its length
            return response
        }
        if isHead {
            var response = Response(status: status, headers: headers, body: ResponseBody())
            response.headers[.contentLength] = String(body.readableBytes)
            return response
        }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: body))
    }

    static func text(_ status: HTTPResponse.Status, _ message: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-cache"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: message))
        )
    }

    static func headers(of request: Request) -> [String: String] {
        var result: [String: String] = [:]
        if let authority = request.head.authority { result["host"] = authority }
        for field in request.headers {
            let name = field.name.canonicalName
            result[name] = result[name].map { $0 + ", " + field.value } ?? field.value
        }
        return result
    }

    static func fileExtension(_ path: RequestPath) -> String {
        ((path.segments.last ?? "") as NSString).pathExtension
    }
}
