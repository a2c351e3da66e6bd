-- ping-pong: the server half of a Vite plugin's `configureServer(server)` in Lua.
-- Vite's `server.ws.on(...)` is `ctx.webSockets:on(...)` here; `client.send(event, data)`
-- is `client:send(event, data)`.
return {
  name = "ping-pong",

  serverStart = function(ctx)
    local ws = ctx.webSockets

    -- Every page that connects is told so.
    ws:on("connection", function(client)
      log.info("client connected:", client.id)
      client:send("connected", { message = "connection established" })
    end)

    -- A custom event from the page: (data, client), as in Vite.
    ws:on("ping", function(data, client)
      log.info("ping from", client.id .. ":", data and data.message)
      client:send("pong", { message = "hello client", echo = data and data.message })
    end)

    ws:on("disconnect", function(client)
      log.info("client disconnected:", client.id)
    end)
  end,
}
