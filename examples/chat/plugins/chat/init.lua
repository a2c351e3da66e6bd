-- chat: a Socket.IO-style chat server in Lua. Pages talk to it with custom events:
--
--   page -> server  message:post { user, text }   post in the page's current room
--                   message:get                    (a request) the current room's history
--                   room:join    { room }          (a request) move to another room
--                   typing       { user }          "user is typing", for everyone else
--   server -> page  message:get  { room, msg = { { user, text, time }, ... } }
--                   typing       { user, room }
--
-- Every page starts in the lobby; the plugin keeps each room's history, so a page that
-- connects or joins a room gets what was said there before.
return function(options)
  local lobby = options.room or "lobby"
  local historyLimit = options.historyLimit or 100
  local history = {} -- room name -> list of { user =, text =, time = }
  local ws

  local function messages(room)
    history[room] = history[room] or {}
    return history[room]
  end

  local function snapshot(room)
    return { room = room, msg = json.array(messages(room)) }
  end

  -- A trimmed, non-empty string of valid UTF-8 of at most `max` characters, or nil.
  local function cleanText(value, max)
    if type(value) ~= "string" or not utf8.len(value) then return nil end
    value = value:match("^%s*(.-)%s*$")
    if value == "" then return nil end
    local cut = utf8.offset(value, max + 1)
    return cut and value:sub(1, cut - 1) or value
  end

  local function roomOf(client)
    return client.data.room or lobby
  end

  return {
    name = "chat",

    serverStart = function(ctx)
      ws = ctx.webSockets

      ws:on("connection", function(client)
        client.data.room = lobby
        client:join(lobby)
        client:send("message:get", snapshot(lobby))
      end)

      ws:on("message:get", function(_, client)
        return snapshot(roomOf(client))
      end)

      ws:on("message:post", function(data, client)
        if type(data) ~= "table" then error("message:post expects { user, text }") end
        local user = cleanText(data.user, 40) or "anonymous"
        local text = cleanText(data.text, 2000)
        if not text then error("message:post: the text is empty") end
        local room = roomOf(client)
        local list = messages(room)
        list[#list + 1] = { user = user, text = text, time = os.time() * 1000 }
        if #list > historyLimit then table.remove(list, 1) end
        log.info(string.format("[%s] %s: %s", room, user, text))
        -- Like Socket.IO's io.to(room).emit("message:get", ...): everybody in the room,
        -- the sender too, gets the new history.
        ws:to(room):send("message:get", snapshot(room))
        return { ok = true, room = room }
      end)

      ws:on("room:join", function(data, client)
        local room = cleanText(type(data) == "table" and data.room or nil, 40)
        if not room then error("room:join expects { room = name }") end
        client:leave(roomOf(client))
        client:join(room)
        client.data.room = room
        return snapshot(room)
      end)

      ws:on("typing", function(data, client)
        local user = cleanText(type(data) == "table" and data.user or nil, 40) or "anonymous"
        -- Everybody but the one typing.
        client:broadcast("typing", { user = user, room = roomOf(client) })
      end)
    end,
  }
end
