/// The DNS-rebinding and cross-origin rules of SPEC §6.
struct OriginPolicy: Sendable {
    /// The configured hostname, lower-cased.
    let hostname: String

    init(hostname: String) {
        self.hostname = hostname.lowercased()
    }

    /// Splits "host:port", "[::1]:port" or "host" into host and port.
    static func split(_ authority: Substring) -> (host: String, port: Int?) {
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return (String(authority), nil) }
            let host = String(authority[authority.startIndex ... close])
            let rest = authority[authority.index(after: close)...]
            return (host.lowercased(), rest.hasPrefix(":") ? Int(rest.dropFirst()) : nil)
        }
        let parts = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        return (parts[0].lowercased(), parts.count > 1 ? Int(parts[1]) : nil)
    }

    static func isIPAddress(_ host: String) -> Bool {
        if host.hasPrefix("[") && host.hasSuffix("]") { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.allSatisfy { UInt8($0) != nil }
    }

    /// A request whose `Host` names a host other than ours, localhost, an IP or *.localhost
    /// is refused (DNS rebinding). No `Host` (HTTP/1.0 tools) is allowed.
    func allows(host: String?) -> Bool {
        guard let host, !host.isEmpty else { return true }
        let name = Self.split(Substring(host)).host
        return name == hostname || name == "localhost" || name.hasSuffix(".localhost") || Self.isIPAddress(name)
    }

    private static func loopbackAlias(_ host: String) -> String {
        ["localhost", "127.0.0.1", "[::1]"].contains(host) ? "localhost" : host
    }

    /// A WebSocket upgrade needs no `Origin` (non-browser clients) or our own origin: the
    /// scheme, host and port of the `Host` it reached us at (loopback names counted as one).
    func allowsWebSocket(origin: String?, host: String?) -> Bool {
        guard let origin else { return true }
        guard let host, origin.hasPrefix("http://") else { return false }
        let ours = Self.split(Substring(host))
        let theirs = Self.split(origin.dropFirst("http://".count))
        return Self.loopbackAlias(theirs.host) == Self.loopbackAlias(ours.host) && (theirs.port ?? 80) == (ours.port ?? 80)
    }
}
