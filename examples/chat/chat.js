// The chat page, Socket.IO style: named events through Lunar's client module.
import { on, send, request } from '/__web-dev-server__web-socket.js';

const messagesList = document.querySelector('#messages');
const typingLine = document.querySelector('#typing');
const userInput = document.querySelector('#user');
const textInput = document.querySelector('#text');
const roomInput = document.querySelector('#room');
const currentRoomLabel = document.querySelector('#current-room');

let currentRoom = 'lobby';
let allChat = [];

function render() {
  messagesList.replaceChildren(...allChat.map(({ user, text, time }) => {
    const item = document.createElement('li');
    item.className = 'message';
    item.dataset.user = user;
    const name = document.createElement('strong');
    name.textContent = user;
    const when = document.createElement('time');
    when.textContent = new Date(time).toLocaleTimeString();
    item.append(name, `: ${text} `, when);
    return item;
  }));
}

function show(snapshot) {
  currentRoom = snapshot.room;
  currentRoomLabel.textContent = currentRoom;
  allChat = snapshot.msg;
  render();
}

// The server sends the room's history on connection and after every post in the room.
on('message:get', (snapshot) => {
  if (snapshot.room === currentRoom) show(snapshot);
});

let typingTimer;
on('typing', ({ user, room }) => {
  if (room !== currentRoom) return;
  typingLine.textContent = `${user} is typing…`;
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => (typingLine.textContent = ''), 2000);
});

document.querySelector('#chat-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const user = userInput.value.trim() || 'anonymous';
  const text = textInput.value;
  if (!text.trim()) return;
  textInput.value = '';
  try {
    await request('message:post', { user, text });
  } catch (error) {
    console.error('post failed:', error.message);
  }
});

document.querySelector('#room-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const room = roomInput.value.trim();
  if (!room) return;
  show(await request('room:join', { room }));
  typingLine.textContent = '';
  console.log(`joined room ${room}`);
});

let lastTyping = 0;
textInput.addEventListener('input', () => {
  if (Date.now() - lastTyping < 1000) return; // at most one "typing" a second
  lastTyping = Date.now();
  send('typing', { user: userInput.value.trim() || 'anonymous' });
});
