-- my-plugin: the examples of @web/dev-server's "Web Sockets" page, as one Lua plugin.
-- JavaScript's `webSockets.sendConsoleLog(...)` is Lua's `webSockets:sendConsoleLog(...)`,
-- `setTimeout` is `timer.after`, and `JSON.stringify` is `json.encode`.
local webSockets

-- A data: URL is a valid import path: handy when the code to run is tiny. (The docs'
-- example reloads the page; this one marks it, so that the example does not reload forever.)
local DATA_URL = "data:text/javascript,"
  .. "document.documentElement.dataset.dataUrl='imported';"
  .. "console.log('the data: URL import ran')"

return {
  name = "my-plugin",
  injectWebSocket = true,

  serverStart = function(ctx)
    webSockets = ctx.webSockets

    -- Each page that connects gets, one second later, the docs' messages. (The docs send
    -- them once, 1 s after the server starts; per page, a page opened later sees them too.)
    webSockets:on("connection", function(client)
      timer.after(1000, function()
        -- Built-in message 1: a console.log in the browser.
        client:sendConsoleLog("my-plugin", "Hello world!")
        -- Built-in message 2: the page imports /foo.js (served below, on no disk) and calls
        -- its default export with the arguments.
        client:sendImport("/foo.js", { "a", "b", "c" })
        -- ... or a data: URL.
        client:sendImport(DATA_URL)
        -- A custom message: any JSON text. The page reads it from the raw socket.
        client:send(json.encode({ type = "x" }))
      end)
    end)

    -- Messages from the browser (sendMessage / sendMessageWaitForResponse on the page).
    webSockets:on("message", function(m)
      log.info("received message", m.text)
      -- As in the docs: answer the socket that sent it with a raw text frame.
      m.webSocket:send("message response")
      -- A return value answers sendMessageWaitForResponse.
      if m.data and m.data.type == "question" then
        return { answer = 42, question = m.data.text }
      end
    end)
  end,

  -- A virtual module: /foo.js exists on no disk.
  serve = function(ctx)
    if ctx.path == "/foo.js" then
      return "export default (...args) => console.log(...args);"
    end
  end,
}
