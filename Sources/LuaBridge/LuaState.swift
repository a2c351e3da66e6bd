import CLua
import CLuaSupport
import Foundation

/// One `lua_State`, with the standard libraries and the `json` global.
///
/// Not thread-safe: it is confined to one thread, the ``LuaExecutor``'s. Every call into Lua
/// runs in protected mode under a time budget, so a Lua error or a runaway loop comes back as
/// a ``LuaError``; Lua errors never unwind through Swift frames.
///
/// ```swift
/// let lua = try LuaState()
/// let results = try lua.run("return 1 + 1", name: "=sum")
/// // results == [.integer(2)]
/// ```
public final class LuaState {
    /// The raw state, for the bridge's own extensions: the Lua thread (coroutine) that is
    /// running now, so that a host function called from a coroutine reads and pushes there.
    public fileprivate(set) var L: OpaquePointer
    private let mainThread: OpaquePointer
    /// Time budget of each entry into Lua, in milliseconds (0: unlimited).
    public var budgetMilliseconds: Int
    let releases = ReleaseQueue()
    private var hostFunctions: [HostFunction] = []

    public init(memoryLimit: Int = 0, budgetMilliseconds: Int = 1000) throws {
        guard let L = lunar_newstate(memoryLimit) else {
            throw LuaError(kind: .memory, message: "cannot create a Lua state: out of memory")
        }
        self.L = L
        self.mainThread = L
        self.budgetMilliseconds = budgetMilliseconds
        luaL_openlibs(L)
        installJSON()
    }

    deinit { lunar_close(mainThread) }

    /// Bytes the state may allocate (0: no limit); past it, allocations fail with a Lua error.
    public var memoryLimit: Int {
        get { lunar_memory_limit(L) }
        set { lunar_set_memory_limit(L, newValue) }
    }

    public var memoryUsed: Int { lunar_memory_used(L) }

    public var top: Int32 {
        get { lua_gettop(L) }
        set { lua_settop(L, newValue) }
    }

    public func pop(_ count: Int32 = 1) { lunar_pop(L, count) }

    // MARK: Loading and calling

    /// Compiles a chunk and pushes it as a function. `name` is Lua's chunk name ("@file" or "=name").
    public func load(_ source: String, name: String) throws(LuaError) {
        var source = source
        let status = source.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) {
                luaL_loadbufferx(L, $0.baseAddress, $0.count, name, "t")
            }
        }
        try check(status)
    }

    /// Compiles a file and pushes it as a function; errors name the file.
    public func load(file path: String) throws(LuaError) {
        try check(luaL_loadfilex(L, path, "t"))
    }

    /// Calls the function below `arguments` values on the stack, under the time budget.
    /// Replaces them with `results` values (or all results with `LUA_MULTRET`).
    public func call(arguments: Int32, results: Int32) throws(LuaError) {
        releaseDroppedReferences()
        restartBudget()
        let status = lunar_pcall(L, arguments, results)
        lunar_set_deadline(L, 0, 0)
        try check(status)
    }

    /// Runs a chunk and returns its results copied into Swift. Leaves the stack as it was.
    @discardableResult
    public func run(_ source: String, name: String = "=chunk") throws(LuaError) -> [LuaValue] {
        let base = top
        defer { top = base }
        try load(source, name: name)
        try call(arguments: 0, results: LUA_MULTRET)
        return (base + 1 ..< top + 1).map { value(at: $0) }
    }

    /// Calls a referenced function with `arguments`, returning its results copied into Swift.
    @discardableResult
    public func call(_ function: LuaReference, _ arguments: [LuaValue] = []) throws(LuaError) -> [LuaValue] {
        let base = top
        defer { top = base }
        push(function)
        for argument in arguments { push(argument) }
        try call(arguments: Int32(arguments.count), results: LUA_MULTRET)
        return (base + 1 ..< top + 1).map { value(at: $0) }
    }

    private func check(_ status: Int32) throws(LuaError) {
        guard status != LUA_OK else { return }
        let raw = string(at: -1) ?? "(error object is not a string)"
        pop()
        throw LuaError(status: status, raw: raw)
    }

    // MARK: Globals

    public func setGlobal(_ name: String, _ value: LuaValue) {
        push(value)
        lua_setglobal(L, name)
    }

    public func global(_ name: String) -> LuaValue {
        lua_getglobal(L, name)
        defer { pop() }
        return value(at: -1)
    }

    // MARK: Host functions

    /// Pushes a Swift function callable from Lua. `body` reads its arguments through
    /// ``LuaArguments``, pushes its results and returns how many; a thrown ``LuaArgumentError``
    /// becomes a Lua error raised by the C trampoline.
    public func push(function name: String, _ body: @escaping (LuaArguments) throws(LuaArgumentError) -> Int32) {
        let function = HostFunction(name: name, body: body, state: self)
        hostFunctions.append(function)
        lunar_push_host_function(L, hostFunctionEntry, Unmanaged.passUnretained(function).toOpaque())
    }

    /// Sets `table[field]` to a Swift function, where `table` is at `index`; errors call it
    /// `name` (e.g. "json.encode"), or `field` when no name is given.
    public func setFunction(_ name: String, named field: String? = nil, in index: Int32, _ body: @escaping (LuaArguments) throws(LuaArgumentError) -> Int32) {
        let index = lua_absindex(L, index)
        push(function: name, body)
        lua_setfield(L, index, field ?? name)
    }
}

/// A Swift closure exposed to Lua; owned by its state, called through `hostFunctionEntry`.
final class HostFunction {
    let name: String
    let body: (LuaArguments) throws(LuaArgumentError) -> Int32
    unowned let state: LuaState

    init(name: String, body: @escaping (LuaArguments) throws(LuaArgumentError) -> Int32, state: LuaState) {
        self.name = name
        self.body = body
        self.state = state
    }
}

private func hostFunctionEntry(_ L: OpaquePointer?, _ context: UnsafeMutableRawPointer?) -> Int32 {
    let function = Unmanaged<HostFunction>.fromOpaque(context!).takeUnretainedValue()
    let state = function.state
    let caller = state.L
    state.L = L!
    defer { state.L = caller }
    do {
        return try function.body(LuaArguments(state: state, function: function.name))
    } catch {
        // luaL_where-style position of the Lua caller, then the message.
        luaL_where(L, 1)
        state.push(error.render(function: function.name))
        lua_concat(L, 2)
        return -1
    }
}

extension LuaState {
    /// Gives the running entry into Lua a fresh time budget (one per plugin hook or handler).
    public func restartBudget() {
        let budget = budgetMilliseconds
        lunar_set_deadline(L, budget > 0 ? lunar_monotonic_now() + Double(budget) / 1000 : 0, Int32(budget))
    }
}
