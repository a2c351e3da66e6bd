-- The benchmark job for Lunar (same as the peers in ../shared/bench):
-- every text message is echoed to its sender, except a text message starting
-- with "B", which is sent to every connected client (sender included).
return {
  name = "bench-echo",
  serverStart = function(ctx)
    local ws = ctx.webSockets
    ws:on("message", function(m)
      local text = m.text
      if text == nil then return end -- binary frame: not part of the job
      if text:sub(1, 1) == "B" then ws:send(text) else m.webSocket:send(text) end
    end)
  end,
}
