-- Run with `lunar examples/chat` from the repository root.
return {
  -- raw.html talks to the server with a bare WebSocket and no Lunar client: keep the
  -- client out of the pages (live-reload would ask for it). index.html imports it itself,
  -- so it still reloads when a file changes.
  injectWebSocket = false,
  plugins = {
    { "./plugins/chat", { room = "lobby", historyLimit = 100 } },
  },
}
