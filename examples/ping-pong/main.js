// Written for Vite: runs unchanged under Lunar, and does nothing where import.meta.hot is
// undefined (a production build).
if (import.meta.hot) {
  import.meta.hot.on('connected', (data) => {
    console.log('connected:', data.message);
    document.querySelector('#connected').textContent = data.message;
  });

  import.meta.hot.send('ping', { message: 'hello server' });

  import.meta.hot.on('pong', (data) => {
    console.log('pong:', data.message);
    document.querySelector('#pong').textContent = data.message;
  });
}
