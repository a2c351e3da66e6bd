import Foundation
import NIOCore
import NIOPosix

/// The event loop threads: one per CPU this process may run on. NIO's own count reads cgroup
/// limits but not the CPU affinity (`taskset`), so a server pinned to one core would otherwise
/// run several event loops that only take turns on it.
enum EventLoops {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: threadCount)

    static var threadCount: Int {
        max(1, min(allowedCPUs ?? System.coreCount, System.coreCount))
    }

    /// The bits of `Cpus_allowed` in /proc/self/status (a hex mask, comma-separated words).
    private static var allowedCPUs: Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) else { return nil }
        let mask = line.dropFirst("Cpus_allowed:".count).filter { $0.isHexDigit }
        let bits = mask.reduce(0) { $0 + ($1.hexDigitValue ?? 0).nonzeroBitCount }
        return bits > 0 ? bits : nil
    }
}
