-- virtual: a module that exists on no disk, a banner on every script, and a MIME type of
-- our own choosing for Markdown notes. One plugin, three hooks.
local BANNER = "/* served by Lunar */\n"

-- Runs once, when the plugin is loaded: the virtual module reports when that was.
local builtAt = os.time()

return function(options)
  local answer = options.answer or 42

  return {
    name = "virtual",

    -- `/virtual/config.js` is made here, on each request; no file is read.
    serve = function(ctx)
      if ctx.path == "/virtual/config.js" then
        return {
          body = string.format("export default { builtAt: %d, answer: %s };\n", builtAt, json.encode(answer)),
          type = "js",
        }
      end
    end,

    -- Every JavaScript body (from disk or from `serve`) gets the banner.
    transform = function(ctx)
      if ctx.type:match("^text/javascript") then
        return BANNER .. ctx.body
      end
    end,

    -- Markdown is shown as plain text in the browser rather than downloaded.
    resolveMimeType = function(ctx)
      if ctx.path:match("%.md$") then
        return "text/plain; charset=utf-8"
      end
    end,
  }
end
