import Foundation

/// The default port is 8000, or the next free one; an explicit port must be free.
enum PortFinder {
    struct Taken: Error, CustomStringConvertible {
        let description: String
    }

    static func choose(_ port: Int, explicit: Bool, host: String) throws(Taken) -> (port: Int, note: String?) {
        if explicit || port == 0 {
            guard port == 0 || isFree(port, host: host) else { throw Taken(description: "port \(port) on \(host) is already in use") }
            return (port, nil)
        }
        for candidate in port ..< min(port + 100, 65536) where isFree(candidate, host: host) {
            return (candidate, candidate == port ? nil : "port \(port) was taken, so Lunar uses \(candidate)")
        }
        throw Taken(description: "no free port from \(port) to \(port + 99) on \(host)")
    }

    /// True when a listening socket could be bound to the port right now.
    static func isFree(_ port: Int, host: String) -> Bool {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let info = result else { return true }
        defer { freeaddrinfo(result) }
        let socket = Glibc.socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard socket >= 0 else { return true }
        defer { close(socket) }
        var yes: Int32 = 1
        setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        return bind(socket, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0
    }
}
