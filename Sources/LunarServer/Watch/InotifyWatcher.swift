#if canImport(Glibc)
import Foundation
import Glibc
import Synchronization

/// Linux's inotify, recursive: every folder under the root gets a watch, including folders
/// created later; events go to a ``ChangeCoalescer``.
final class InotifyWatcher: FileWatcher, Sendable {
    private struct State {
        var folders: [Int32: String] = [:]
        var coalescer: ChangeCoalescer?
        var ignored: (@Sendable (String) -> Bool)?
        var root = ""
    }

    private let state = Mutex(State())
    private let descriptor: Int32
    private static let mask = UInt32(IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF)

    struct StartError: Error, CustomStringConvertible {
        let description: String
    }

    init() throws {
        descriptor = inotify_init1(Int32(IN_CLOEXEC))
        guard descriptor >= 0 else { throw StartError(description: "cannot start inotify: \(String(cString: strerror(errno)))") }
    }

    func start(root: String, ignored: @escaping @Sendable (String) -> Bool, onChanges: @escaping @Sendable ([FileChange]) -> Void) throws {
        let coalescer = ChangeCoalescer(deliver: onChanges)
        state.withLock {
            $0.coalescer = coalescer
            $0.ignored = ignored
            $0.root = root
        }
        addTree(root, reportFiles: false)
        let thread = Thread { [self] in readLoop() }
        thread.name = "lunar.watch"
        thread.start()
    }

    private func relative(_ path: String, root: String) -> String {
        path == root ? "" : String(path.dropFirst(root.count + 1))
    }

    /// Watches `folder` and every folder below it; files found are known (or reported as
    /// added, for a folder that appeared after start).
    private func addTree(_ folder: String, reportFiles: Bool) {
        let (root, ignored, coalescer) = state.withLock { ($0.root, $0.ignored, $0.coalescer) }
        let rel = relative(folder, root: root)
        if !rel.isEmpty, ignored?(rel) == true { return }
        let watch = inotify_add_watch(descriptor, folder, Self.mask)
        if watch >= 0 { state.withLock { $0.folders[watch] = folder } }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names {
            let path = folder + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            if (info.st_mode & S_IFMT) == S_IFDIR {
                addTree(path, reportFiles: reportFiles)
            } else if ignored?(relative(path, root: root)) != true {
                if reportFiles { coalescer?.touched(path) } else { coalescer?.know(path) }
            }
        }
    }

    /// A folder went away (deleted, or moved out or elsewhere): its files are gone from where
    /// they were, and its watches (which would follow a moved folder) are dropped.
    private func removeTree(_ folder: String, coalescer: ChangeCoalescer?) {
        coalescer?.touchAll(under: folder)
        let gone = state.withLock { state -> [Int32] in
            let gone = state.folders.filter { $0.value == folder || $0.value.hasPrefix(folder + "/") }.map(\.key)
            for watch in gone { state.folders[watch] = nil }
            return gone
        }
        for watch in gone { inotify_rm_watch(descriptor, watch) }
    }

    private func readLoop() {
        let size = 64 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let count = read(descriptor, buffer, size)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            var offset = 0
            while offset < count {
                let event = buffer.advanced(by: offset).assumingMemoryBound(to: inotify_event.self).pointee
                let nameLength = Int(event.len)
                let name = nameLength > 0
                    ? String(cString: buffer.advanced(by: offset + MemoryLayout<inotify_event>.size).assumingMemoryBound(to: CChar.self))
                    : ""
                handle(event, name: name)
                offset += MemoryLayout<inotify_event>.size + nameLength
            }
        }
    }

    private func handle(_ event: inotify_event, name: String) {
        let (folder, root, ignored, coalescer) = state.withLock { ($0.folders[event.wd], $0.root, $0.ignored, $0.coalescer) }
        if event.mask & UInt32(IN_Q_OVERFLOW) != 0 {
            // The kernel dropped events: every known file may have changed.
            coalescer?.touchAll(under: root)
            return
        }
        guard let folder else { return }
        if event.mask & UInt32(IN_DELETE_SELF) != 0 || event.mask & UInt32(IN_IGNORED) != 0 {
            _ = state.withLock { $0.folders.removeValue(forKey: event.wd) }
            return
        }
        guard !name.isEmpty else { return }
        let path = folder + "/" + name
        if ignored?(relative(path, root: root)) == true { return }
        if event.mask & UInt32(IN_ISDIR) != 0 {
            if event.mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 { addTree(path, reportFiles: true) }
            if event.mask & UInt32(IN_DELETE | IN_MOVED_FROM) != 0 { removeTree(path, coalescer: coalescer) }
            return
        }
        coalescer?.touched(path)
    }
}
#endif
