import NIOCore
import NIOPosix

/// Defers a wake-up of the Lua thread to the end of the current event loop iteration, once:
/// the messages of every socket read in that iteration then reach Lua in one batch, with one
/// thread switch, instead of one switch per message. Off an event loop it wakes at once.
enum EndOfTick {
    private final class Pending {
        var wakes: [@Sendable () -> Void] = []
    }

    // nonisolated(unsafe): each thread sees only its own value.
    nonisolated(unsafe) private static let pending = ThreadSpecificVariable<Pending>()

    static func run(_ wake: @escaping @Sendable () -> Void) {
        guard let loop = MultiThreadedEventLoopGroup.currentEventLoop else { return wake() }
        let state: Pending
        if let existing = pending.currentValue {
            state = existing
        } else {
            state = Pending()
            pending.currentValue = state
        }
        state.wakes.append(wake)
        guard state.wakes.count == 1 else { return }
        // Tasks run after the I/O of this iteration; `state` belongs to this thread.
        let bound = NIOLoopBound(state, eventLoop: loop)
        loop.execute {
            let wakes = bound.value.wakes
            bound.value.wakes.removeAll(keepingCapacity: true)
            for wake in wakes { wake() }
        }
    }
}
