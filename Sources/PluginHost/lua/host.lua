-- The Lua half of Lunar's plugin host: plugin loading and isolation, the `webSockets` API,
-- timers, and the dispatch of hooks and WebSocket events. The Swift half (PluginHost.swift)
-- hands in `host`, a table of primitives (send, rooms, timers, logging), and calls the
-- functions of the table returned at the end. Everything here runs on the Lua thread.
local host = ...

local M = {}

local fullPaths -- defined with the plugin files' short names, below

-- An error with the traceback frames inside this runtime left out: they say nothing to a
-- plugin author. The message itself is kept whatever it names.
function M.tidy(err)
  local lines, inTraceback = {}, false
  for line in (tostring(err) .. "\n"):gmatch("(.-)\n") do
    if line == "stack traceback:" then inTraceback = true end
    local internal = inTraceback and (line:find("lua/host.lua:", 1, true) or line:find("[C]: in function 'xpcall'", 1, true)
      or line:find("[C]: in function 'pcall'", 1, true) or line:find("[C]: in ?", 1, true)
      or line:find("in field 'guard'", 1, true) or line:find("in function 'host.guard'", 1, true))
    if not internal then lines[#lines + 1] = line end
  end
  return fullPaths(table.concat(lines, "\n"))
end

local format = string.format

local RESERVED = { message = true, connection = true, disconnect = true }
local CONSOLE_LOG = "data:text/javascript,export default (...a) => console.log(...a)"
local CONSOLE_ERROR = "data:text/javascript,export default (...a) => console.error(...a)"

local active = { list = {}, byName = {} }   -- the running plugin set
local handlers = {}                          -- event -> { {record=, fn=}, ... }
local timers = {}                            -- id -> { fn=, record=, every= }
local nextTimer = 0
local clients = {}                           -- id -> client object

-- Errors -------------------------------------------------------------------------------------

-- "file:line: message" from an error value, with the plugin named first.
local function describe(record, what, err)
  -- The traceback's frames inside this runtime say nothing to a plugin author.
  return format("plugin %q (%s) %s failed: %s", record.name or "?", record.file or "?", what, M.tidy(err))
end

local consoleError

-- Logs a plugin's failure in the terminal and in every open page's console.
local function report(record, what, err)
  local text = describe(record, what, err)
  host.report(text)
  consoleError(text)
  return text
end

-- Calls fn(...) as `record`'s `what`, with a fresh time budget. Returns ok, result-or-message.
-- `host.guard` is C: a plugin that catches its own timeout cannot keep the runtime waiting.
local function call(record, what, fn, ...)
  local ok, result = host.guard(fn, ...)
  if ok then return true, result end
  return false, report(record, what, result)
end

-- Argument checks, worded like lauxlib's ------------------------------------------------------

local function argError(n, fname, message, level)
  error(format("bad argument #%d to '%s' (%s)", n, fname, message), (level or 2) + 1)
end

-- `level` counts from the function that calls checkType (1: it; 2: its caller, the default).
local function checkType(value, expected, n, fname, level)
  if type(value) ~= expected then
    argError(n, fname, format("%s expected, got %s", expected, value == nil and "no value" or type(value)), (level or 2) + 1)
  end
end

local function checkSelf(self, class, method)
  if getmetatable(self) ~= class then
    error(format("bad self to '%s' (call it with a colon: %s:%s(...), not %s.%s(...))",
      method, class.__name, method, class.__name, method), 3)
  end
end

-- Files --------------------------------------------------------------------------------------

-- A readable regular file (a folder opens too, but reading it fails with EISDIR).
local function exists(path)
  local file = io.open(path, "r")
  if not file then return false end
  local _, _, code = file:read(0)
  file:close()
  return code == nil
end

local function isAbsolute(path) return path:sub(1, 1) == "/" end

local function join(dir, path)
  if isAbsolute(path) then return path end
  path = path:gsub("^%./", "")
  return dir .. "/" .. path
end

local function dirname(path) return path:match("^(.*)/[^/]*$") or "." end

-- Lua cuts chunk names past 60 characters, so plugin files load under names relative to the
-- project, and `fullPaths` puts the full path back into every message (M.tidy).
local projectRoot
local shortNames = {}
local function displayName(path)
  if projectRoot and path:sub(1, #projectRoot + 1) == projectRoot .. "/" then
    local short = path:sub(#projectRoot + 2)
    shortNames[short] = path
    return short
  end
  return path
end

function fullPaths(message)
  message = "\n" .. message
  for short, full in pairs(shortNames) do
    local escaped = short:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
    message = message:gsub("([\n\t <(])" .. escaped .. "(:%d)", function(before, after) return before .. full .. after end)
  end
  return message:sub(2)
end

-- loadfile, with the short name in error messages and tracebacks.
local function loadPluginFile(path, env)
  local file, err = io.open(path, "r")
  if not file then return nil, err end
  local source = file:read("a")
  file:close()
  return load(source, "@" .. displayName(path), "t", env)
end

-- Sending ------------------------------------------------------------------------------------

-- Targets as the Swift hub knows them.
local ALL, CLIENT, ROOM, EXCEPT = 0, 1, 2, 3

local function encode(fname, value)
  local ok, text = pcall(json.encode, value)  -- blame (level 4) the plugin's call of the method
  if not ok then error(format("%s: %s", fname, (tostring(text):gsub("^.-bad argument", "bad argument"))), 4) end
  return text
end

local function sendText(target, key, fname, ...)
  local count = select("#", ...)
  local first, second = ...
  local text
  if count >= 2 then
    if type(first) ~= "string" then argError(1, fname, "event name (string) expected", 3) end
    if second == nil then second = json.null end
    text = encode(fname, { type = "custom", event = first, data = second })
  elseif type(first) == "string" then
    text = first
  elseif type(first) == "table" then
    text = encode(fname, first)
  else
    argError(1, fname, format("string or table expected, got %s", first == nil and "no value" or type(first)), 3)
  end
  host.send(target, key, text)
end

local function sendImport(target, key, fname, path, args)
  checkType(path, "string", 1, fname, 3)
  if args ~= nil and type(args) ~= "table" then argError(2, fname, "table of arguments expected", 3) end
  host.send(target, key, encode(fname, {
    type = "import",
    data = { importPath = path, args = json.array(args or {}) },
  }))
end

local function consoleLog(target, key, fname, ...)
  local args = json.array({})
  for i = 1, select("#", ...) do
    local value = select(i, ...)
    if value == nil then value = json.null end
    args[i] = value
  end
  sendImport(target, key, fname, CONSOLE_LOG, args)
end

-- A set of pages: all of them (`webSockets`) or one room (`webSockets:to(room)`).
local Pages = { __name = "webSockets" }
Pages.__index = Pages
local Room = { __name = "room" }
Room.__index = Room

for class, name in pairs({ [Pages] = "webSockets", [Room] = "room" }) do
  function class.send(self, ...)
    checkSelf(self, class, "send")
    sendText(self._target, self._key, name .. ":send", ...)
  end
  function class.sendImport(self, path, args)
    checkSelf(self, class, "sendImport")
    sendImport(self._target, self._key, name .. ":sendImport", path, args)
  end
  function class.sendConsoleLog(self, ...)
    checkSelf(self, class, "sendConsoleLog")
    consoleLog(self._target, self._key, name .. ":sendConsoleLog", ...)
  end
end

function Pages.on(self, event, fn)
  checkSelf(self, Pages, "on")
  checkType(event, "string", 1, "webSockets:on")
  checkType(fn, "function", 2, "webSockets:on")
  -- Lists are replaced, never changed in place, so a dispatch running over one is safe.
  local old = handlers[event] or {}
  local list = table.move(old, 1, #old, 1, {})
  list[#list + 1] = { record = self._record, fn = fn }
  handlers[event] = list
end

-- Removes this plugin's handler `fn` for `event`, or all of this plugin's handlers for it:
-- one plugin never silences another's.
function Pages.off(self, event, fn)
  checkSelf(self, Pages, "off")
  checkType(event, "string", 1, "webSockets:off")
  if fn ~= nil then checkType(fn, "function", 2, "webSockets:off") end
  local kept = {}
  for _, handler in ipairs(handlers[event] or {}) do
    local mine = handler.record == self._record
    if not mine or (fn ~= nil and handler.fn ~= fn) then kept[#kept + 1] = handler end
  end
  handlers[event] = kept
end

function Pages.to(self, room)
  checkSelf(self, Pages, "to")
  checkType(room, "string", 1, "webSockets:to")
  return setmetatable({ _target = ROOM, _key = room }, Room)
end

function Pages.clients(self)
  checkSelf(self, Pages, "clients")
  local list = {}
  for _, id in ipairs(host.clients()) do
    if clients[id] then list[#list + 1] = clients[id] end
  end
  return list
end

-- One page.
local Client = { __name = "client" }
Client.__index = Client

function Client.send(self, ...)
  checkSelf(self, Client, "send")
  sendText(CLIENT, self.id, "client:send", ...)
end

function Client.sendImport(self, path, args)
  checkSelf(self, Client, "sendImport")
  sendImport(CLIENT, self.id, "client:sendImport", path, args)
end

function Client.sendConsoleLog(self, ...)
  checkSelf(self, Client, "sendConsoleLog")
  consoleLog(CLIENT, self.id, "client:sendConsoleLog", ...)
end

function Client.sendBinary(self, bytes)
  checkSelf(self, Client, "sendBinary")
  checkType(bytes, "string", 1, "client:sendBinary")
  host.sendBinary(self.id, bytes)
end

function Client.broadcast(self, ...)
  checkSelf(self, Client, "broadcast")
  sendText(EXCEPT, self.id, "client:broadcast", ...)
end

function Client.join(self, room)
  checkSelf(self, Client, "join")
  checkType(room, "string", 1, "client:join")
  host.join(self.id, room)
end

function Client.leave(self, room)
  checkSelf(self, Client, "leave")
  checkType(room, "string", 1, "client:leave")
  host.leave(self.id, room)
end

function Client.rooms(self)
  checkSelf(self, Client, "rooms")
  return host.rooms(self.id)
end

function Client.close(self, code, reason)
  checkSelf(self, Client, "close")
  if code ~= nil and math.type(code) ~= "integer" then argError(1, "client:close", "integer close code expected") end
  if reason ~= nil then checkType(reason, "string", 2, "client:close") end
  if host.close(self.id, code or 1000, reason or "") then M.disconnect(self.id) end
end

-- Plugin environments --------------------------------------------------------------------------

local Timer = { __name = "timer" }
Timer.__index = Timer

function Timer.cancel(self)
  checkSelf(self, Timer, "cancel")
  timers[self.id] = nil
end

local function makeTimerLibrary(record)
  -- `level` 3: errors blame the plugin's call of timer.after / timer.every.
  local function start(fname, ms, fn, every)
    if math.type(ms) == nil then argError(1, fname, "number of milliseconds expected", 3) end
    if type(fn) ~= "function" then
      argError(2, fname, format("function expected, got %s", fn == nil and "no value" or type(fn)), 3)
    end
    if ms < 0 then argError(1, fname, "milliseconds must not be negative", 3) end
    nextTimer = nextTimer + 1
    timers[nextTimer] = { fn = fn, record = record, every = every, ms = ms }
    host.startTimer(nextTimer, math.floor(ms))
    return setmetatable({ id = nextTimer }, Timer)
  end
  return {
    after = function(ms, fn) local handle = start("timer.after", ms, fn, false) return handle end,
    every = function(ms, fn) local handle = start("timer.every", ms, fn, true) return handle end,
  }
end

local function makeLogger(record)
  local logger = {}
  for _, level in ipairs({ "debug", "info", "warn", "error" }) do
    logger[level] = function(...)
      local parts = {}
      for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
      host.log(level, record.name or record.file, table.concat(parts, "\t"))
    end
  end
  return logger
end

-- `require` that looks in the plugin's own folder first, so a plugin folder is self-contained.
local function makeRequire(record, env)
  local loaded = {}
  return function(name)
    checkType(name, "string", 1, "require")
    if loaded[name] ~= nil then return loaded[name] end
    local relative = name:gsub("%.", "/")
    for _, path in ipairs({ record.dir .. "/" .. relative .. ".lua", record.dir .. "/" .. relative .. "/init.lua" }) do
      if exists(path) then
        local chunk, err = loadPluginFile(path, env)
        if not chunk then error(err, 2) end
        host.watch(path)
        local result = chunk(name, path)
        if result == nil then result = true end
        loaded[name] = result
        return result
      end
    end
    return require(name)
  end
end

local function makeEnvironment(record)
  local env = setmetatable({}, { __index = _G })
  env._G = env
  env.PLUGIN_DIR = record.dir
  env.log = makeLogger(record)
  env.timer = makeTimerLibrary(record)
  env.require = makeRequire(record, env)
  return env
end

-- Finding and loading plugins -------------------------------------------------------------------

local function findByName(name, searchDirs)
  local tried = {}
  for _, dir in ipairs(searchDirs) do
    for _, path in ipairs({ dir .. "/" .. name .. ".lua", dir .. "/" .. name .. "/init.lua" }) do
      tried[#tried + 1] = path
      if exists(path) then return path end
    end
  end
  return nil, format("plugin %q not found; looked for:\n  %s", name, table.concat(tried, "\n  "))
end

local function findByPath(path, baseDir)
  local full = join(baseDir, path)
  local candidates = full:match("%.lua$") and { full } or { full .. "/init.lua", full .. ".lua" }
  for _, candidate in ipairs(candidates) do
    if exists(candidate) then return candidate end
  end
  return nil, format("plugin %q not found; looked for:\n  %s", path, table.concat(candidates, "\n  "))
end

local function isPath(entry) return entry:find("/", 1, true) or entry:match("%.lua$") end

-- Turns one `plugins` entry into a plugin record (not started yet), or raises a message.
local function loadEntry(entry, options, baseDir, searchDirs)
  local record = { options = options or {} }
  local plugin
  if type(entry) == "table" then
    record.file = "(inline plugin in the config)"
    record.dir = baseDir
    plugin = entry
  else
    local file, err
    if isPath(entry) then file, err = findByPath(entry, baseDir) else file, err = findByName(entry, searchDirs) end
    if not file then error(err, 0) end
    record.file = file
    record.dir = dirname(file)
    local env = makeEnvironment(record)
    local chunk, syntaxError = loadPluginFile(file, env)
    if not chunk then error(syntaxError, 0) end
    host.watch(file)
    local ok, result = host.guard(chunk)
    if not ok then error(result, 0) end
    if type(result) == "function" then
      ok, result = host.guard(result, record.options)
      if not ok then error(result, 0) end
    end
    if type(result) ~= "table" then
      error(format("%s: a plugin must return a table or a function(options) that returns one, got %s",
        file, type(result)), 0)
    end
    plugin = result
  end
  if type(plugin.name) ~= "string" or plugin.name == "" then
    error(format("%s: the plugin table has no name (a string field `name` is required)", record.file), 0)
  end
  record.name = plugin.name
  record.plugin = plugin
  record.webSockets = setmetatable({ _target = ALL, _record = record }, Pages)
  return record
end

-- Loads every entry; returns a plugin set, or nil and one message naming the file and line.
-- Each entry is { entry = name, path or inline table, options = table?, baseDir = folder }.
function M.load(entries, searchDirs, rootDir)
  projectRoot = rootDir
  local set = { list = {}, byName = {} }
  for index, item in ipairs(entries) do
    local entry, options, base = item.entry, item.options, item.baseDir
    if type(entry) ~= "string" and type(entry) ~= "table" then
      return nil, format("plugins[%d]: expected a name, a path, { entry, options } or a plugin table, got %s",
        index, type(entry))
    end
    if options ~= nil and type(options) ~= "table" then
      return nil, format("plugins[%d]: options must be a table, got %s", index, type(options))
    end
    local ok, result = pcall(loadEntry, entry, options, base, searchDirs)
    -- A start-up failure is one message: file:line and what went wrong, no traceback.
    if not ok then return nil, fullPaths((tostring(result):gsub("\nstack traceback:.*$", ""))) end
    if set.byName[result.name] then
      return nil, format("two plugins are named %q: %s and %s", result.name, set.byName[result.name].file, result.file)
    end
    set.byName[result.name] = result
    set.list[#set.list + 1] = result
  end
  return set
end

-- What the Swift side needs to know to skip Lua when no plugin cares.
function M.summary(set)
  local summary = { injectWebSocket = false, names = {}, files = {} }
  for _, record in ipairs(set.list) do
    local plugin = record.plugin
    summary.names[#summary.names + 1] = record.name
    summary.files[#summary.files + 1] = record.file
    for _, hook in ipairs({ "serve", "transform", "resolveMimeType", "fileChanged", "reload" }) do
      if type(plugin[hook]) == "function" then summary[hook] = true end
    end
    if plugin.injectWebSocket == true then summary.injectWebSocket = true end
  end
  return summary
end

local function start(set, ctx)
  for _, record in ipairs(set.list) do
    local serverStart = record.plugin.serverStart
    if type(serverStart) == "function" then
      local info = { webSockets = record.webSockets, config = ctx.config, rootDir = ctx.rootDir, url = ctx.url }
      local ok, message = call(record, "serverStart", serverStart, info)
      if not ok then return nil, message end
    end
  end
  return true
end

-- Makes `set` the running one: stops the old plugins, then starts the new ones. Handlers and
-- timers belong to the plugins that made them and go with them; clients stay. If a new
-- `serverStart` fails, the new set is stopped and the old one started again.
function M.activate(set, ctx)
  local previous = active
  M.stop()
  active = set
  set.ctx = ctx
  local ok, message = start(set, ctx)
  if ok then return true end
  M.stop()
  active = previous
  if #previous.list > 0 then start(previous, previous.ctx or ctx) end
  return nil, message
end

function M.stop()
  for _, record in ipairs(active.list) do
    if type(record.plugin.serverStop) == "function" then call(record, "serverStop", record.plugin.serverStop) end
  end
  for event, list in pairs(handlers) do
    local kept = {}
    for _, handler in ipairs(list) do
      if active.byName[handler.record.name] ~= handler.record then kept[#kept + 1] = handler end
    end
    handlers[event] = kept
  end
  for id, entry in pairs(timers) do
    if active.byName[entry.record.name] == entry.record then timers[id] = nil end
  end
  active = { list = {}, byName = {} }
end

-- HTTP hooks -----------------------------------------------------------------------------------

local function mergeHeaders(into, from)
  if type(from) ~= "table" then return into end
  into = into or {}
  for name, value in pairs(from) do into[tostring(name):lower()] = tostring(value) end
  return into
end

-- The first `serve` result, normalised: body, type, status, headers, or nil (no plugin served);
-- or false and the error message.
function M.serve(ctx)
  for _, record in ipairs(active.list) do
    local serve = record.plugin.serve
    if type(serve) == "function" then
      local ok, result = call(record, "serve", serve, ctx)
      if not ok then return false, result end
      if type(result) == "string" then return result, nil, 200, nil end
      if type(result) == "table" then
        local body = result.body
        if body ~= nil and type(body) ~= "string" then
          return false, report(record, "serve", "the result's `body` must be a string, got " .. type(body))
        end
        if result.status ~= nil and math.type(result.status) ~= "integer" then
          return false, report(record, "serve", "the result's `status` must be an integer")
        end
        return body or "", result.type and tostring(result.type), result.status or 200, mergeHeaders(nil, result.headers)
      end
      if result ~= nil then
        return false, report(record, "serve", "serve must return nil, a string or a table, got " .. type(result))
      end
    end
  end
  return nil
end

-- Runs every `transform` (on 2xx bodies) then `resolveMimeType`; returns body, headers, type;
-- or false and the error message.
function M.finish(ctx, transform, resolve)
  local headers
  if transform then
    for _, record in ipairs(active.list) do
      local hook = record.plugin.transform
      if type(hook) == "function" then
        local ok, result = call(record, "transform", hook, ctx)
        if not ok then return false, result end
        if type(result) == "string" then
          ctx.body = result
        elseif type(result) == "table" then
          if result.body ~= nil then ctx.body = tostring(result.body) end
          headers = mergeHeaders(headers, result.headers)
        end
      end
    end
  end
  local resolved
  if resolve then
    for _, record in ipairs(active.list) do
      local hook = record.plugin.resolveMimeType
      if type(hook) == "function" then
        local ok, result = call(record, "resolveMimeType", hook, ctx)
        if not ok then return false, result end
        if result ~= nil then resolved = tostring(result) end
      end
    end
  end
  return ctx.body, headers, resolved
end

-- Watching ---------------------------------------------------------------------------------------

-- One coalesced batch of changes: each goes to every `fileChanged` hook in order until one
-- returns true (handled); the changes nobody handled go, as one list, to every `reload` hook,
-- so a burst of 200 files makes one reload. Returns how many changes were handled.
function M.filesChanged(events)
  local unhandled, handled = {}, 0
  for _, event in ipairs(events) do
    local taken = false
    for _, record in ipairs(active.list) do
      local hook = record.plugin.fileChanged
      if type(hook) == "function" then
        local ok, result = call(record, "fileChanged", hook, event)
        if ok and result == true then taken = true break end
      end
    end
    if taken then handled = handled + 1 else unhandled[#unhandled + 1] = event end
  end
  if #unhandled > 0 then
    for _, record in ipairs(active.list) do
      local hook = record.plugin.reload
      if type(hook) == "function" then call(record, "reload", hook, unhandled) end
    end
  end
  return handled
end

-- Timers ------------------------------------------------------------------------------------------

-- Runs timer `id`; returns its period when it should run again.
function M.fireTimer(id)
  local entry = timers[id]
  if not entry then return nil end
  if not entry.every then timers[id] = nil end
  call(entry.record, "timer", entry.fn)
  if entry.every and timers[id] then return math.max(1, math.floor(entry.ms)) end
  return nil
end

-- WebSocket events ----------------------------------------------------------------------------------

local function runHandlers(event, ...)
  local list = handlers[event]
  if not list or #list == 0 then return nil, nil end
  local response, failure
  for i = 1, #list do
    local handler = list[i]
    local ok, result = host.guard(handler.fn, ...)
    if not ok then result = report(handler.record, format("handler for %q", event), result) end
    if response == nil and failure == nil then
      if not ok then failure = result elseif result ~= nil then response = result end
    end
  end
  return response, failure
end

local function respond(client, id, response, failure)
  local message = { type = "message-response", id = id }
  if failure then
    message.error = failure
  else
    message.response = response == nil and json.null or response
  end
  local ok, text = pcall(json.encode, message)
  if not ok then
    text = json.encode({ type = "message-response", id = id, error = "the response cannot be encoded as JSON: " .. tostring(text) })
  end
  host.send(CLIENT, client.id, text)
end

function M.connection(id)
  local client = setmetatable({ id = id, data = {} }, Client)
  clients[id] = client
  runHandlers("connection", client)
end

function M.disconnect(id)
  local client = clients[id]
  if not client then return end
  runHandlers("disconnect", client)
  clients[id] = nil
end

function M.message(id, text)
  local client = clients[id]
  if not client then return end
  -- Only an object can be a message with a type: skip decoding anything else.
  local data
  if text:find("^%s*{") then
    local ok, decoded = pcall(json.decode, text)
    if ok and type(decoded) == "table" then data = decoded end
  end
  if data and data.type == "custom" and type(data.event) == "string" then
    local event = data.event
    if RESERVED[event] then
      host.log("debug", "lunar", format("dropped a custom event with the reserved name %q from %s", event, id))
      return
    end
    local payload = data.data
    if payload == json.null then payload = nil end
    local response, failure = runHandlers(event, payload, client)
    if data.id ~= nil then respond(client, data.id, response, failure) end
    return
  end
  local response, failure = runHandlers("message", { webSocket = client, data = data, text = text })
  if data and data.id ~= nil then respond(client, data.id, response, failure) end
end

function M.binary(id, bytes)
  local client = clients[id]
  if client then runHandlers("message", { webSocket = client, binary = bytes }) end
end

-- Errors to the open pages' consoles (development feedback, as @web/dev-server does).
function consoleError(text)
  local ok, encoded = pcall(json.encode, { type = "import", data = { importPath = CONSOLE_ERROR, args = { text } } })
  if ok then host.send(ALL, nil, encoded) end
end

M.consoleError = consoleError

return M
