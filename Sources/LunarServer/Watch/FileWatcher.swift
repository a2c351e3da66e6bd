/// A change to one file under a watched folder, after coalescing.
public struct FileChange: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case add, change, unlink
    }

    /// Absolute path.
    public let file: String
    public let kind: Kind
}

/// Watches a folder tree and reports coalesced batches of changes. The platform part
/// (inotify on Linux) stays behind this protocol.
protocol FileWatcher: Sendable {
    /// Starts watching `root`, except paths for which `ignored` (given the path relative to
    /// the root) is true; `onChanges` gets each coalesced batch.
    func start(root: String, ignored: @escaping @Sendable (String) -> Bool, onChanges: @escaping @Sendable ([FileChange]) -> Void) throws
}
