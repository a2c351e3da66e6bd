-- Run with `lunar examples/ping-pong` from the repository root.
return {
  plugins = {
    "./plugins/ping-pong.lua",
  },
}
