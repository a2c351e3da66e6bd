-- Hook-cost case: one trivial `serve` hook, entered for every request; it
-- returns nil, so the file is still read from disk and served as in none.config.lua.
return {
  watch = false,
  plugins = {
    { name = "serve-nil", serve = function(ctx) return nil end },
  },
}
