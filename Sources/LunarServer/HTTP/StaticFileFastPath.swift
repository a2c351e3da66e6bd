import NIOCore
import NIOHTTP1
import PluginHost

/// Answers a plain GET or HEAD of a file right on the event loop, before Hummingbird's
/// per-request task: a dev page's hundreds of modules are the hot path of a dev server. It
/// asks ``RequestPipeline/plainFile(target:authority:summary:)`` — the same decision, bytes
/// and tags the full pipeline uses — and passes every other request on unchanged (plugin
/// hooks, redirects, errors, WebSocket upgrades).
///
/// Sits right after NIO's HTTP/1 decoder. Responses leave in request order: while a request
/// passed on is unanswered, later ones are passed on too. It also keeps the connection's idle
/// timeout, since Hummingbird's own sees only the requests passed on: a connection with no
/// traffic for `idleTimeout` is closed, unless the full path still owes it an answer.
final class StaticFileFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let pipeline: RequestPipeline
    private let summary: @Sendable () -> PluginSummary
    /// Requests passed on whose response has not ended yet.
    private var passedOn = 0
    /// The body and end of a request answered here are dropped.
    private var answered = false
    /// A request's head came and its end not yet.
    private var inRequest = false
    private let idleTimeout: TimeAmount
    private var lastActive = NIODeadline.uptimeNanoseconds(0)
    private var idleCheck: Scheduled<Void>?

    init(pipeline: RequestPipeline, idleTimeout: TimeAmount = .seconds(120), summary: @escaping @Sendable () -> PluginSummary) {
        self.pipeline = pipeline
        self.idleTimeout = idleTimeout
        self.summary = summary
    }

    func handlerAdded(context: ChannelHandlerContext) {
        lastActive = context.eventLoop.now
        checkIdle(context: context, after: idleTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        idleCheck = nil
    }

    private func checkIdle(context: ChannelHandlerContext, after delay: TimeAmount) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleCheck = context.eventLoop.scheduleTask(in: delay) {
            let (handler, context) = bound.value
            let quiet = context.eventLoop.now - handler.lastActive
            // Not while the full path still owes an answer; a client stalled mid-request is cut off.
            let owed = handler.passedOn > 0 && !handler.inRequest
            if quiet >= handler.idleTimeout, !owed {
                context.close(promise: nil)
            } else {
                handler.checkIdle(context: context, after: max(handler.idleTimeout - quiet, .seconds(1)))
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActive = context.eventLoop.now
        let part = unwrapInboundIn(data)
        switch part {
        case .head: inRequest = true
        case .end: inRequest = false
        case .body: break
        }
        if answered {
            if case .end = part { answered = false }
            return
        }
        switch part {
        case .head(let head):
            let isUpgrade = head.headers.contains(name: "upgrade")
            if passedOn == 0, !isUpgrade, let file = plainFile(head) {
                answered = true
                respond(context: context, head: head, file: file)
                return
            }
            passedOn += 1
            context.fireChannelRead(data)
            if isUpgrade {
                // A WebSocket from here on: the HTTP handlers leave the pipeline, so does this one.
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            }
        case .body, .end:
            context.fireChannelRead(data)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        lastActive = context.eventLoop.now
        if case .end = unwrapOutboundIn(data) { passedOn = max(0, passedOn - 1) }
        context.write(data, promise: promise)
    }

    private func plainFile(_ head: HTTPRequestHead) -> RequestPipeline.PlainFile? {
        guard head.method == .GET || head.method == .HEAD else { return nil }
        return pipeline.plainFile(target: head.uri, authority: head.headers.first(name: "host"), summary: summary())
    }

    private func respond(context: ChannelHandlerContext, head request: HTTPRequestHead, file: RequestPipeline.PlainFile) {
        var headers = HTTPHeaders()
        headers.reserveCapacity(7)
        headers.add(name: "Content-Type", value: file.type)
        headers.add(name: "Cache-Control", value: "no-cache")
        headers.add(name: "ETag", value: file.etag)
        if let lastModified = file.lastModified { headers.add(name: "Last-Modified", value: lastModified) }
        headers.add(name: "Date", value: HTTPDate.now())
        let keepAlive = request.isKeepAlive
        if !keepAlive {
            headers.add(name: "Connection", value: "close")
        } else if request.version.minor == 0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        let fresh = Revalidation.isFresh(
            ifNoneMatch: Self.joined(request.headers["if-none-match"]),
            ifModifiedSince: request.headers.first(name: "if-modified-since"),
            etag: file.etag, lastModified: file.lastModified
        )
        let status: HTTPResponseStatus = fresh ? .notModified : .ok
        if !fresh { headers.add(name: "Content-Length", value: String(file.body.readableBytes)) }
        let version = HTTPVersion(major: 1, minor: request.version.minor == 0 ? 0 : 1)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
        if !fresh, request.method != .HEAD, file.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(file.body))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.whenComplete { _ in loopBound.value.close(promise: nil) }
        }
    }

    /// A list header's values as one (nil when absent), as HTTP combines repeated fields.
    private static func joined(_ values: [String]) -> String? {
        values.count < 2 ? values.first : values.joined(separator: ", ")
    }
}
