return {
  name = "echo",
  serverStart = function(ctx)
    ctx.webSockets:on("message", function(m)
      if m.binary then m.webSocket:sendBinary(m.binary) else m.webSocket:send(m.text) end
    end)
  end,
}
