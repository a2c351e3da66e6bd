import Foundation
import Synchronization

/// Turns the raw event bursts editors make (temp file + rename, several writes in a row,
/// a build writing hundreds of files) into one batch with one change per file, once the
/// tree has been quiet for `window`.
final class ChangeCoalescer: Sendable {
    private struct State {
        var pending: Set<String> = []
        /// When the oldest pending change came: a file written without pause must not hold
        /// back the others for longer than `maxWait`.
        var firstPending: Double = 0
        /// Files known to exist, to tell an added file from a changed one.
        var known: Set<String> = []
        var generation = 0
    }

    private let state = Mutex(State())
    private let window: DispatchTimeInterval
    private let queue = DispatchQueue(label: "lunar.watch.coalesce")
    private let deliver: @Sendable ([FileChange]) -> Void

    private let maxWait = 0.2

    init(window: DispatchTimeInterval = .milliseconds(30), deliver: @escaping @Sendable ([FileChange]) -> Void) {
        self.window = window
        self.deliver = deliver
    }

    private static func now() -> Double { ProcessInfo.processInfo.systemUptime }

    /// Every known file under `folder` (a folder deleted or moved away) changed.
    func touchAll(under folder: String) {
        let files = state.withLock { $0.known.filter { $0.hasPrefix(folder + "/") } }
        for file in files { touched(file) }
    }

    func know(_ file: String) { _ = state.withLock { $0.known.insert(file) } }

    /// Something happened to `file`; what exactly is decided when the burst ends.
    func touched(_ file: String) {
        let generation = state.withLock { state -> Int in
            if state.pending.isEmpty { state.firstPending = Self.now() }
            state.pending.insert(file)
            state.generation += 1
            return state.generation
        }
        queue.asyncAfter(deadline: .now() + window) { [self] in flush(ifStill: generation) }
    }

    private func flush(ifStill generation: Int) {
        let changes = state.withLock { state -> [FileChange] in
            guard !state.pending.isEmpty, state.generation == generation || Self.now() - state.firstPending >= maxWait else { return [] }
            var changes: [FileChange] = []
            for file in state.pending.sorted() {
                var info = stat()
                let exists = stat(file, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
                let existed = state.known.contains(file)
                switch (existed, exists) {
                case (false, true): changes.append(FileChange(file: file, kind: .add)); state.known.insert(file)
                case (true, true): changes.append(FileChange(file: file, kind: .change))
                case (true, false): changes.append(FileChange(file: file, kind: .unlink)); state.known.remove(file)
                case (false, false): break
                }
            }
            state.pending.removeAll()
            return changes
        }
        if !changes.isEmpty { deliver(changes) }
    }
}
