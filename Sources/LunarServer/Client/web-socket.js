// Lunar's browser client, served at /__web-dev-server__web-socket.js.
//
// One WebSocket per page to /wds on the origin this module came from. The wire format and
// the reliability protocol (session, ack, hello, replay) are described in docs/PROTOCOL.md;
// this file is the reference implementation of the page side. No build step, no dependencies.

const RESERVED = new Set(['message', 'connection', 'disconnect']);
const RESPONSE_TIMEOUT_MS = 20_000;
const BACKOFF_FIRST_MS = 1_000;
const BACKOFF_MAX_MS = 5_000;

/** The current socket; a live binding, replaced on every reconnect. */
export let webSocket;
let resolveOpened;
/** Resolves with the socket when the first connection is open. */
export const webSocketOpened = new Promise((resolve) => (resolveOpened = resolve));

const url = new URL('/wds', import.meta.url);
url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';

// One session per page load: the server keeps the frames it sends us while we are away and
// replays them when we come back with the same session id and our frame count.
// randomUUID exists only in secure contexts (not on http://192.168.x.y), hence the fallback.
const sessionId = globalThis.crypto?.randomUUID?.() ?? Array.from(
  crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
let received = 0; // server frames received in this session, hello frames excluded
let boot; // the server's boot id from the first hello; a different one means it restarted
let ready = false; // the current socket is open and its hello arrived
let unloading = false;
let backoff = BACKOFF_FIRST_MS;
let reconnectTimer;
const outbox = []; // JSON texts sent while not ready, flushed in order after the next hello
// Server messages are handled one after the other, each after the previous import finished,
// so that `sendImport(module that calls on("x"))` followed by `send("x")` works.
let inbox = Promise.resolve();

let nextId = 1;
const pending = new Map(); // id -> { resolve, reject, timer }
const listeners = new Map(); // event -> Set of functions

// Custom events for which no listener exists yet are held until the page has loaded, so a
// message that races the page's own module graph is not lost (Vite drops it).
let loaded = typeof document === 'undefined' || document.readyState === 'complete';
const held = []; // [event, data] in arrival order

function connect() {
  clearTimeout(reconnectTimer); // a timer left from before a back/forward-cache stay
  ready = false;
  url.search = `?session=${encodeURIComponent(sessionId)}&ack=${received}`;
  let socket;
  try {
    socket = new WebSocket(url);
  } catch (error) {
    console.error('[lunar] cannot open the WebSocket:', error);
    return reconnectLater();
  }
  socket.binaryType = 'arraybuffer'; // binary frames are only counted; skip the Blob
  webSocket = socket;
  socket.addEventListener('open', () => resolveOpened(socket));
  socket.addEventListener('message', (event) => socket === webSocket && receive(event.data));
  socket.addEventListener('close', () => {
    if (socket !== webSocket) return; // a socket we already replaced
    ready = false;
    reconnectLater();
  });
}

function reconnectLater() {
  if (unloading) return;
  reconnectTimer = setTimeout(() => unloading || connect(), backoff);
  backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
}

function receive(raw) {
  let message;
  if (typeof raw === 'string') {
    try { message = JSON.parse(raw); } catch { /* not JSON: counted below, then ignored */ }
  }
  // The hello is the first frame of every connection and the only one not counted.
  if (!ready && message?.type === 'lunar:hello') return hello(message);
  received++;
  if (message && typeof message === 'object') inbox = inbox.then(() => handle(message));
}

function hello({ boot: serverBoot, resumed, count }) {
  if (boot === undefined) {
    boot = serverBoot;
  } else if (serverBoot !== boot) {
    // A new server process: nothing it could replay is ours, and our modules may be stale.
    unloading = true;
    location.reload();
    return;
  }
  if (Number.isInteger(count)) {
    // The server says where its replay starts: frames between our count and it are lost.
    if (count > received) console.warn(`[lunar] ${count - received} server message(s) were lost`);
    received = count;
  } else if (!resumed) {
    received = 0; // the server forgot our session and started a new one under the same id
  }
  ready = true;
  backoff = BACKOFF_FIRST_MS;
  for (const text of outbox.splice(0)) webSocket.send(text);
}

async function handle(message) {
  switch (message.type) {
    case 'import': {
      const { importPath, args } = message.data ?? {};
      try {
        const module = await import(importPath);
        if (typeof module.default === 'function') {
          // Not awaited: a slow default export must not stall the channel.
          Promise.resolve(module.default(...(Array.isArray(args) ? args : [])))
            .catch((error) => console.error(`[lunar] error in ${importPath}:`, error));
        }
      } catch (error) {
        console.error(`[lunar] failed to import ${importPath}:`, error);
      }
      break;
    }
    case 'custom':
      if (typeof message.event === 'string') deliver(message.event, message.data);
      break;
    case 'message-response': {
      const request = pending.get(message.id);
      if (!request) break; // timed out already, or not ours
      pending.delete(message.id);
      clearTimeout(request.timer);
      const { error, response } = message;
      if (error === undefined || error === null) request.resolve(response);
      else request.reject(new Error(String(error)));
      break;
    }
    // Any other type is for other clients of the channel; ignore it.
  }
}

function deliver(event, data) {
  const fns = listeners.get(event);
  // While holding, an event whose earlier copies are held is held too, to keep the order.
  if (!loaded && (!fns?.size || held.some(([e]) => e === event))) {
    held.push([event, data]);
    return;
  }
  for (const fn of [...(fns ?? [])]) {
    try {
      fn(data);
    } catch (error) {
      console.error(`[lunar] error in a listener for "${event}":`, error);
    }
  }
}

if (!loaded) {
  // After the other load handlers too, so that listeners they register get the held events.
  addEventListener('load', () => setTimeout(() => {
    loaded = true;
    for (const [event, data] of held.splice(0)) deliver(event, data);
  }), { once: true });
}

function post(text) {
  if (ready && webSocket.readyState === WebSocket.OPEN) webSocket.send(text);
  else outbox.push(text);
}

function postWithId(message) {
  const id = nextId++;
  const text = JSON.stringify({ ...message, id }); // throws now if it cannot be sent at all
  const answer = new Promise((resolve, reject) => {
    // The timeout runs from the call, across reconnects: a replayed answer still counts.
    const timer = setTimeout(() => {
      pending.delete(id);
      const seconds = RESPONSE_TIMEOUT_MS / 1000;
      reject(new Error(`[lunar] no response to message ${id} within ${seconds} s`));
    }, RESPONSE_TIMEOUT_MS);
    pending.set(id, { resolve, reject, timer });
  });
  post(text);
  return answer;
}

function checkMessage(msg) {
  if (typeof msg?.type !== 'string' || msg.type === '') {
    throw new TypeError('[lunar] a message must be an object with a string "type"');
  }
}

function checkEvent(event) {
  if (typeof event !== 'string') throw new TypeError('[lunar] an event name must be a string');
  if (RESERVED.has(event)) throw new TypeError(`[lunar] "${event}" is a reserved event name`);
}

/** Sends a plain message to the server's `message` handlers. */
export function sendMessage(msg) {
  checkMessage(msg);
  post(JSON.stringify(msg));
}

/** Sends a plain message with an `id`; resolves with the server's `response`. */
export function sendMessageWaitForResponse(msg) {
  checkMessage(msg);
  return postWithId(msg);
}

/** Listens to the custom event `event` from the server. */
export function on(event, fn) {
  if (typeof fn !== 'function') throw new TypeError('[lunar] a listener must be a function');
  if (!listeners.has(event)) listeners.set(event, new Set());
  listeners.get(event).add(fn);
}

export function off(event, fn) {
  listeners.get(event)?.delete(fn);
}

/** Sends the custom event `event` to the server's handlers of that event. */
export function send(event, data = null) {
  checkEvent(event);
  post(JSON.stringify({ type: 'custom', event, data }));
}

/** Sends the custom event with an `id`; resolves with the first handler's answer. */
export function request(event, data = null) {
  checkEvent(event);
  return postWithId({ type: 'custom', event, data });
}

// `import.meta.hot` for modules the server rewrote. Lunar has no hot module replacement, so
// the HMR hooks Vite code calls are accepted and do nothing; `data` is kept per module URL.
const hotData = new Map();
export function createHotContext(moduleUrl) {
  if (!hotData.has(moduleUrl)) hotData.set(moduleUrl, {});
  const noop = () => {};
  return {
    on, off, send,
    data: hotData.get(moduleUrl),
    accept: noop, dispose: noop, prune: noop, decline: noop,
    invalidate: () => location.reload(), // what Vite falls back to when nothing accepts
  };
}

// Leaving the page: do not reconnect. If it comes back from the back/forward cache, connect
// again with the same session id; the server, which was told the page left, starts afresh.
// The bye tells the server that the page left for good, so that it ends the session now
// rather than keeping it for a reconnect that will not come (see docs/PROTOCOL.md).
addEventListener('pagehide', () => {
  unloading = true;
  if (webSocket?.readyState === WebSocket.OPEN) webSocket.send('{"type":"lunar:bye"}');
  webSocket?.close(1000, 'page hidden');
});
addEventListener('pageshow', (event) => {
  if (!event.persisted || !unloading) return;
  unloading = false;
  backoff = BACKOFF_FIRST_MS;
  connect();
});

globalThis.__lunar = {
  get webSocket() { return webSocket; },
  webSocketOpened, sendMessage, sendMessageWaitForResponse,
  on, off, send, request, createHotContext,
  get sessionId() { return sessionId; },
  get received() { return received; },
  get boot() { return boot; },
};

connect();
