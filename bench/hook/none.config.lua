-- Hook-cost baseline: no plugin at all, so no Lua runs per request.
return {
  watch = false,
  plugins = { },
}
