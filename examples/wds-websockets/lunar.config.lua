-- Run with `lunar examples/wds-websockets` from the repository root.
return {
  plugins = {
    "./plugins/my-plugin.lua",
  },
}
