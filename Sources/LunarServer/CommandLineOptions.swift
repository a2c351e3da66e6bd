/// What the command line said (SPEC §1); nil means "not given", so the config decides.
public struct CommandLineOptions: Sendable {
    public var root: String?
    public var port: Int?
    public var host: String?
    public var config: String?
    public var plugins: [String] = []
    /// The path to open in a browser, when `--open` was given.
    public var open: String?
    public var appIndex: String?
    public var noWatch = false
    public var logLevel: String = "info"

    public init(root: String? = nil) {
        self.root = root
    }
}
