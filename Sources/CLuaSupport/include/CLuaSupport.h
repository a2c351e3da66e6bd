#ifndef LUNAR_CLUA_SUPPORT_H
#define LUNAR_CLUA_SUPPORT_H

#include <stddef.h>
#include <lua5.4/lua.h>
#include <lua5.4/lauxlib.h>
#include <lua5.4/lualib.h>

/// A Swift function callable from Lua. It never raises: it returns the number of results it
/// pushed, or -1 after pushing an error message, which the C trampoline then raises.
typedef int (*lunar_host_function)(lua_State *L, void *context);

/// A new state with the capped allocator and the deadline hook installed.
/// `memory_limit` is in bytes (0: no limit). Returns NULL if memory ran out.
lua_State *lunar_newstate(size_t memory_limit);
void lunar_close(lua_State *L);
void lunar_set_memory_limit(lua_State *L, size_t limit);
size_t lunar_memory_used(lua_State *L);
size_t lunar_memory_limit(lua_State *L);

/// Pushes a Lua C closure that calls `fn(L, context)` and raises its error if it returns -1.
void lunar_push_host_function(lua_State *L, lunar_host_function fn, void *context);

/// Any Lua code running past `deadline` (CLOCK_MONOTONIC seconds; 0 = none) is stopped with an
/// error "... ran past its time budget of `budget_ms` ms".
void lunar_set_deadline(lua_State *L, double deadline, int budget_ms);
double lunar_monotonic_now(void);

/// A lua_CFunction `guard(fn, ...)`: calls fn with a fresh time budget, in protected mode,
/// and returns `true, results...` or `false, message-with-traceback`; after a timeout it
/// clears the sticky stop, so the caller (the plugin host's runtime) can go on.
int lunar_guarded_call(lua_State *L);

/// lua_pcall with a message handler that appends a traceback. Leaves either the results or
/// the message string (first line "file:line: msg", then "\nstack traceback:...").
int lunar_pcall(lua_State *L, int nargs, int nresults);

/// Function-like macros of lua.h, which Swift cannot import.
void lunar_pop(lua_State *L, int n);
void lunar_newtable(lua_State *L);
int lunar_registryindex(void);
const char *lunar_tostring(lua_State *L, int idx, size_t *len);
int lunar_isnoneornil(lua_State *L, int idx);
void lunar_pushglobaltable(lua_State *L);
int lunar_upvalueindex(int i);

#endif
