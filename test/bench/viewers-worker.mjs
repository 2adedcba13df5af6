// The fan-out benchmark's WebSocket viewers, in a worker thread: their sockets and JSON parsing
// run on another core, not on the broadcaster's. Times are epoch ms with sub-ms precision
// (performance.timeOrigin + performance.now()), comparable with the main thread's.
import { parentPort, workerData } from 'node:worker_threads';
import WebSocket from 'ws';

const { urls, openConcurrency } = workerData;
const now = () => performance.timeOrigin + performance.now();
const receipts = new Map();
let covered = 0;
let maxFrameBytes = 0;
let frames = 0;
const sockets = [];

function onFrame(data) {
  const at = now();
  const text = String(data);
  frames += 1;
  maxFrameBytes = Math.max(maxFrameBytes, Buffer.byteLength(text));
  const frame = JSON.parse(text);
  const events = frame.type === 'batch' ? frame.events : [frame];
  for (const event of events) {
    if (event.type === 'giftSummary') covered += event.toSeq - event.fromSeq + 1;
    if (event.type !== 'gift') continue;
    covered += 1;
    const seen = receipts.get(event.giftTxId) ?? { count: 0, firstAt: at, lastAt: 0 };
    seen.count += 1;
    seen.lastAt = Math.max(seen.lastAt, at);
    receipts.set(event.giftTxId, seen);
    if (seen.count === sockets.length)
      parentPort.postMessage({
        type: 'complete',
        giftTxId: event.giftTxId,
        firstAt: seen.firstAt,
        lastAt: seen.lastAt,
      });
  }
}

function open(url) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.on('message', onFrame);
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

parentPort.on('message', async (message) => {
  if (message.type === 'open') {
    for (let start = 0; start < urls.length; start += openConcurrency) {
      sockets.push(...(await Promise.all(urls.slice(start, start + openConcurrency).map(open))));
    }
    parentPort.postMessage({ type: 'opened', count: sockets.length });
  } else if (message.type === 'stats') {
    parentPort.postMessage({ type: 'stats', covered, frames, maxFrameBytes });
  } else if (message.type === 'close') {
    await Promise.all(
      sockets.map(
        (socket) =>
          new Promise((resolve) => {
            socket.once('close', resolve);
            socket.close();
          }),
      ),
    );
    parentPort.postMessage({ type: 'closed' });
  }
});
