import NIOCore

/// Runs a WebSocket's reader and writer on the socket's own event loop. Without it, every
/// frame would hop between the event loop thread and Swift's cooperative pool and back.
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
