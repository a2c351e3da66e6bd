// The page side of the @web/dev-server web socket API: the injected client module exports
// the socket, a promise for its opening, and the message helpers.
import { webSocket, webSocketOpened, sendMessageWaitForResponse } from '/__web-dev-server__web-socket.js';

const list = document.querySelector('#log');
function show(text) {
  const item = document.createElement('li');
  item.textContent = text;
  list.append(item);
}

// Custom messages arrive on the socket itself; the client ignores types it does not know.
webSocket.addEventListener('message', (event) => {
  if (event.data === 'message response') {
    console.log('got the raw text "message response"');
    show('raw text: message response');
    return;
  }
  let message;
  try {
    message = JSON.parse(event.data);
  } catch {
    return;
  }
  if (message.type === 'x') {
    console.log('custom message of type x');
    show('custom message: {"type":"x"}');
  }
});

await webSocketOpened;
const answer = await sendMessageWaitForResponse({ type: 'question', text: 'what is the answer?' });
console.log('answer from the server:', JSON.stringify(answer));
show(`answer: ${answer.answer}`);
