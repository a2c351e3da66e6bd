-- live-reload: reloads the open pages when a served file changes, and swaps a changed
-- stylesheet in place (no reload, page state survives). Uses only the public plugin API:
-- `reload` gets the changes no `fileChanged` hook handled, one batch per burst of writes.
local RELOAD_PAGE = "data:text/javascript,export default () => location.reload()"

local function readFile(path)
  local file = assert(io.open(path, "r"))
  local text = file:read("a")
  file:close()
  return text
end

-- A module as a data: URL, so swapping a stylesheet needs no `serve` hook (which would put
-- every request through Lua).
local function dataModule(source)
  return "data:text/javascript," .. source:gsub("[^%w%-_%.~!%*'%(%);:@&=%+%$,/%?%[%]]", function(c)
    return string.format("%%%02X", c:byte())
  end)
end

local SWAP_STYLESHEET = dataModule(readFile(PLUGIN_DIR .. "/swap-stylesheet.js"))

return function(options)
  local webSockets

  return {
    name = "live-reload",
    injectWebSocket = true,

    serverStart = function(ctx)
      webSockets = ctx.webSockets
    end,

    reload = function(changes)
      local stylesheets = {}
      for _, change in ipairs(changes) do
        if change.kind ~= "change" or not change.path:match("%.css$") then
          log.debug("reloading pages:", change.path, change.kind)
          webSockets:sendImport(RELOAD_PAGE)
          return
        end
        stylesheets[#stylesheets + 1] = change.path
      end
      for _, path in ipairs(stylesheets) do
        webSockets:sendImport(SWAP_STYLESHEET, { path })
      end
    end,
  }
end
