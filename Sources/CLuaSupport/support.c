#include "CLuaSupport.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

// Shared by every thread (coroutine) of one state: lua_getallocf hands it back.
typedef struct {
    size_t used;
    size_t limit;
    // Allocations may fail only while Lua code runs inside lunar_pcall. Elsewhere (a host
    // function, or Swift pushing values between calls) a failing allocation would raise a Lua
    // error through Swift frames, or panic outside any protected call. Starts at 1: outside.
    int in_host;
    double deadline;
    int budget_ms;
    // Set once the deadline passed: from then on every instruction raises, so a plugin that
    // catches the error with pcall cannot keep running. Cleared by lunar_guarded_call.
    int expired;
} lunar_state_info;

static void *lunar_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    lunar_state_info *info = (lunar_state_info *)ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        info->used -= old;
        return NULL;
    }
    if (info->limit && nsize > old && info->used + (nsize - old) > info->limit && !info->in_host) {
        return NULL;
    }
    void *block = realloc(ptr, nsize);
    if (block) info->used = info->used - old + nsize;
    return block;
}

double lunar_monotonic_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static lunar_state_info *info_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return (lunar_state_info *)ud;
}

#define LUNAR_HOOK_COUNT 1000

static void lunar_deadline_hook(lua_State *L, lua_Debug *ar) {
    lunar_state_info *info = info_of(L);
    if (info->expired) {
        luaL_error(L, "stopped: ran past its time budget of %d ms", info->budget_ms);
    }
    if (lua_gethookcount(L) != LUNAR_HOOK_COUNT) {
        // A thread left at every-instruction checks by an earlier timeout: back to normal.
        lua_sethook(L, lunar_deadline_hook, LUA_MASKCOUNT, LUNAR_HOOK_COUNT);
    }
    if (info->deadline > 0 && lunar_monotonic_now() > info->deadline) {
        info->expired = 1;
        lua_sethook(L, lunar_deadline_hook, LUA_MASKCOUNT, 1);
        // Name the line that was running, like any other Lua error.
        if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0) {
            luaL_error(L, "%s:%d: stopped: ran past its time budget of %d ms", ar->short_src, ar->currentline, info->budget_ms);
        }
        luaL_error(L, "stopped: ran past its time budget of %d ms", info->budget_ms);
    }
}

lua_State *lunar_newstate(size_t memory_limit) {
    lunar_state_info *info = calloc(1, sizeof(lunar_state_info));
    if (!info) return NULL;
    info->limit = memory_limit;
    info->in_host = 1;
    lua_State *L = lua_newstate(lunar_alloc, info);
    if (!L) {
        free(info);
        return NULL;
    }
    // Checked every 1000 VM instructions: cheap, and prompt enough for a 1 s budget.
    lua_sethook(L, lunar_deadline_hook, LUA_MASKCOUNT, LUNAR_HOOK_COUNT);
    return L;
}

void lunar_close(lua_State *L) {
    lunar_state_info *info = info_of(L);
    lua_close(L);
    free(info);
}

void lunar_set_memory_limit(lua_State *L, size_t limit) { info_of(L)->limit = limit; }
size_t lunar_memory_used(lua_State *L) { return info_of(L)->used; }
size_t lunar_memory_limit(lua_State *L) { return info_of(L)->limit; }

void lunar_set_deadline(lua_State *L, double deadline, int budget_ms) {
    lunar_state_info *info = info_of(L);
    info->deadline = deadline;
    info->budget_ms = budget_ms;
    info->expired = 0;
    lua_sethook(L, lunar_deadline_hook, LUA_MASKCOUNT, LUNAR_HOOK_COUNT);
}

static int lunar_trampoline(lua_State *L) {
    lunar_host_function fn = (lunar_host_function)lua_touserdata(L, lua_upvalueindex(1));
    void *context = lua_touserdata(L, lua_upvalueindex(2));
    lunar_state_info *info = info_of(L);
    info->in_host++;
    int results = fn(L, context);
    info->in_host--;
    if (results < 0) {
        return lua_error(L);  // the message is on top; raised here, in C, never in Swift
    }
    return results;
}

void lunar_push_host_function(lua_State *L, lunar_host_function fn, void *context) {
    lua_pushlightuserdata(L, (void *)fn);
    lua_pushlightuserdata(L, context);
    lua_pushcclosure(L, lunar_trampoline, 2);
}

static int lunar_traceback_handler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
            msg = lua_tostring(L, -1);
        } else {
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
        }
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int lunar_pcall(lua_State *L, int nargs, int nresults) {
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, lunar_traceback_handler);
    lua_insert(L, base);
    lunar_state_info *info = info_of(L);
    int outside = info->in_host;
    info->in_host = 0;
    int status = lua_pcall(L, nargs, nresults, base);
    info->in_host = outside;
    lua_remove(L, base);
    return status;
}

void lunar_pop(lua_State *L, int n) { lua_pop(L, n); }
void lunar_newtable(lua_State *L) { lua_newtable(L); }
int lunar_registryindex(void) { return LUA_REGISTRYINDEX; }
const char *lunar_tostring(lua_State *L, int idx, size_t *len) { return lua_tolstring(L, idx, len); }
int lunar_isnoneornil(lua_State *L, int idx) { return lua_isnoneornil(L, idx); }
void lunar_pushglobaltable(lua_State *L) { lua_pushglobaltable(L); }
int lunar_upvalueindex(int i) { return lua_upvalueindex(i); }

int lunar_guarded_call(lua_State *L) {
    lunar_state_info *info = info_of(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    int budget = info->budget_ms;
    lunar_set_deadline(L, budget > 0 ? lunar_monotonic_now() + budget / 1000.0 : 0, budget);
    int status = lunar_pcall(L, lua_gettop(L) - 1, LUA_MULTRET);
    // The runtime's own code runs on without a deadline until the next guarded call.
    lunar_set_deadline(L, 0, budget);
    lua_pushboolean(L, status == LUA_OK);
    lua_insert(L, 1);
    return lua_gettop(L);
}
