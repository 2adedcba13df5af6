// The Event API benchmark's subscribers, in a child process of their own (not a thread of the
// publisher's): each opens the stand-in's realtime endpoint with the documented subprotocols,
// sends connection_init, subscribes to the room's channel, and records when each frame arrived.
// Each frame carries its publish time (epoch ms, same machine clock); latencies go back by IPC.
import WebSocket from 'ws';

const now = () => performance.timeOrigin + performance.now();
const latencies = [];
const sockets = [];
let refused = 0;

function subscribe({ url, ca, channel, token, host }, index) {
  const header = Buffer.from(JSON.stringify({ Authorization: token, host })).toString('base64url');
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, ['aws-appsync-event-ws', `header-${header}`], { ca });
    socket.once('error', reject);
    socket.on('message', (data) => {
      const message = JSON.parse(String(data));
      if (message.type === 'connection_ack')
        socket.send(
          JSON.stringify({
            type: 'subscribe',
            id: `s${index}`,
            channel,
            authorization: { Authorization: token, host },
          }),
        );
      else if (message.type === 'subscribe_success') resolve(socket);
      else if (message.type === 'subscribe_error' || message.type === 'connection_error') {
        refused += 1;
        reject(new Error(message.type));
      } else if (message.type === 'data') {
        const at = now();
        const frame = JSON.parse(message.event);
        latencies.push(at - frame.publishedAt);
      }
    });
    socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
  });
}

process.on('message', async (message) => {
  if (message.type === 'open') {
    const { count, concurrency } = message;
    for (let start = 0; start < count; start += concurrency) {
      const batch = Array.from({ length: Math.min(concurrency, count - start) }, (_, offset) =>
        subscribe(message, start + offset),
      );
      sockets.push(...(await Promise.all(batch)));
    }
    process.send({ type: 'opened', count: sockets.length, refused });
  } else if (message.type === 'stats') {
    process.send({ type: 'stats', latencies });
  } else if (message.type === 'close') {
    for (const socket of sockets) socket.terminate();
    process.send({ type: 'closed' });
    process.exit(0);
  }
});
