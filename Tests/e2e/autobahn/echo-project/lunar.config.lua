-- Autobahn|Testsuite target: /wds echoes every message back (text as text, binary as binary).
return { plugins = { "./plugins/echo.lua" }, watch = false, maxMessageSize = 16777216 }
