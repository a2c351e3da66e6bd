-- Run with `lunar examples/virtual-modules` from the repository root.
return {
  plugins = {
    { "./plugins/virtual.lua", { answer = 42 } },
  },
}
