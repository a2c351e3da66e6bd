import CLua
import CLuaSupport
import Foundation
import Logging
import LuaBridge
import WebSocketHub

/// The Swift functions the Lua runtime (`lua/host.lua`) is built on: the hub's sending and
/// rooms, timers, logging and budgets. Each checks its arguments and never raises from Swift.
enum HostPrimitives {
    /// Pushes the `host` table. Pushes one value.
    static func push(into lua: LuaState, box: HostBox, hub: Hub, logger: Logger) {
        lunar_newtable(lua.L)

        lua.setFunction("send", in: -1) { args throws(LuaArgumentError) in
            let text = try args.string(3)
            hub.send(.text(text), to: try target(args))
            return 0
        }
        lua.setFunction("sendBinary", in: -1) { args throws(LuaArgumentError) in
            hub.send(.binary(try args.bytes(2)), to: .client(try args.string(1)))
            return 0
        }
        lua.setFunction("join", in: -1) { args throws(LuaArgumentError) in
            hub.join(try args.string(1), room: try args.string(2))
            return 0
        }
        lua.setFunction("leave", in: -1) { args throws(LuaArgumentError) in
            hub.leave(try args.string(1), room: try args.string(2))
            return 0
        }
        lua.setFunction("rooms", in: -1) { args throws(LuaArgumentError) in
            let rooms = hub.rooms(of: try args.string(1))
            args.state.push(.array(rooms.map { .string($0) }))
            return 1
        }
        lua.setFunction("clients", in: -1) { args throws(LuaArgumentError) in
            args.state.push(.array(hub.clientIDs().map { .string($0) }))
            return 1
        }
        lua.setFunction("close", in: -1) { args throws(LuaArgumentError) in
            let code = try args.integer(2)
            guard (1000 ... 4999).contains(code) else { throw LuaArgumentError(argument: 1, "close code must be within 1000–4999") }
            let reason = try args.string(3)
            guard reason.utf8.count <= 123 else { throw LuaArgumentError(argument: 2, "reason must be at most 123 bytes") }
            let gone = hub.close(try args.string(1), code: UInt16(code), reason: reason)
            lua_pushboolean(args.state.L, gone ? 1 : 0)
            return 1
        }
        lua.setFunction("startTimer", in: -1) { args throws(LuaArgumentError) in
            let id = try args.integer(1)
            let milliseconds = try args.integer(2)
            box.host?.startTimer(id, milliseconds: Int(max(0, milliseconds)))
            return 0
        }
        lua_pushcclosure(lua.L, lunar_guarded_call, 0)
        lua_setfield(lua.L, -2, "guard")
        lua.setFunction("watch", in: -1) { args throws(LuaArgumentError) in
            box.host?.watch(try args.string(1))
            return 0
        }
        lua.setFunction("report", in: -1) { args throws(LuaArgumentError) in
            box.host?.report(try args.string(1))
            return 0
        }
        lua.setFunction("log", in: -1) { args throws(LuaArgumentError) in
            let level = try args.string(1)
            let source = try args.string(2)
            let message = try args.string(3)
            let line: Logger.Message = "[\(source)] \(message)"
            switch level {
            case "debug": logger.debug(line)
            case "warn": logger.warning(line)
            case "error": logger.error(line)
            default: logger.info(line)
            }
            return 0
        }
    }

    /// Arguments 1–2 of `send`: the hub's target kind (as numbered in host.lua) and its key.
    private static func target(_ args: LuaArguments) throws(LuaArgumentError) -> Hub.Target {
        switch try args.integer(1) {
        case 0: return .all
        case 1: return .client(try args.string(2))
        case 2: return .room(try args.string(2))
        case 3: return .allExcept(try args.string(2))
        default: throw LuaArgumentError(argument: 1, "unknown target")
        }
    }
}
