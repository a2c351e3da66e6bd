import NIOCore

/// Runs a connection's async code on the connection's own event loop. Without it, every
/// request and every WebSocket frame would hop between the event loop thread and Swift's
/// cooperative pool: two thread switches that cost more than serving a small file.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: an EventLoop is thread-safe; this only forwards jobs to it.
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
