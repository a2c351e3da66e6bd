import Foundation

/// The frames recently sent to one resumable client, numbered 1, 2, 3… so that after a
/// reconnect the page's count of frames received says exactly which ones it missed.
/// Bounded in count and age.
struct ReplayBuffer {
    private(set) var lastSequence: UInt64 = 0
    private var frames: [(sequence: UInt64, time: Double, frame: OutboundFrame)] = []
    private var start = 0
    let limit: Int
    let maxAge: Double

    init(limit: Int, maxAge: Double) {
        self.limit = limit
        self.maxAge = maxAge
    }

    mutating func append(_ frame: OutboundFrame, now: Double) {
        lastSequence += 1
        frames.append((lastSequence, now, frame))
        if frames.count - start > limit { start += 1 }
        if start > 1024, start * 2 > frames.count {
            frames.removeFirst(start)
            start = 0
        }
    }

    /// The frames after `acknowledged` still kept, oldest first, and the count the page must
    /// hold before them (less than `acknowledged` never; more when some were already dropped).
    func frames(after acknowledged: UInt64, now: Double) -> (frames: [OutboundFrame], countBefore: UInt64) {
        let kept = frames[start...].filter { $0.sequence > acknowledged && now - $0.time <= maxAge }
        let countBefore = kept.first.map { $0.sequence - 1 } ?? max(acknowledged, lastSequence)
        return (kept.map(\.frame), countBefore)
    }
}
