-- Lunar as a benchmark peer: run as
--   lunar FIXTURE --port N --no-watch --config bench/lunar-peer/lunar.config.lua
-- The served root comes from the command line (flags win over the config).
return {
  watch = false,                   -- no watcher, no live-reload plugin
  maxMessageSize = 64 * 1048576,   -- the peers accept 16 MiB+; never the limit here
  plugins = { "./bench-echo.lua" },
}
