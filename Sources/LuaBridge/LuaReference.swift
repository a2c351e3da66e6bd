import CLua
import CLuaSupport
import Synchronization

/// A Lua value (usually a function) kept alive in the registry so Swift can call it later.
/// It may be dropped on any thread: the registry slot is freed on the Lua thread at the next
/// entry into Lua.
public final class LuaReference: Sendable, Equatable, Hashable {
    let slot: Int32
    private let releases: ReleaseQueue

    init(slot: Int32, releases: ReleaseQueue) {
        self.slot = slot
        self.releases = releases
    }

    deinit { releases.add(slot) }

    public static func == (lhs: LuaReference, rhs: LuaReference) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

/// Registry slots whose references were dropped, waiting for the Lua thread.
final class ReleaseQueue: Sendable {
    private let slots = Mutex<[Int32]>([])
    func add(_ slot: Int32) { slots.withLock { $0.append(slot) } }
    func drain() -> [Int32] { slots.withLock { let s = $0; $0 = []; return s } }
}

extension LuaState {
    /// Pops the top value and returns a reference to it.
    public func reference() -> LuaReference {
        let slot = luaL_ref(L, lunar_registryindex())
        return LuaReference(slot: slot, releases: releases)
    }

    /// Pushes the referenced value. Pushes one value.
    public func push(_ reference: LuaReference) {
        lua_rawgeti(L, lunar_registryindex(), lua_Integer(reference.slot))
    }

    func releaseDroppedReferences() {
        for slot in releases.drain() { luaL_unref(L, lunar_registryindex(), slot) }
    }
}
