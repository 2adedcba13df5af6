import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startEventApiStandIn } from '../../infra/local/event-api';
import { roomChannel } from '../../shared/events/channels';
import { EventApiPublisher } from '../../shared/events/publisher';
import { BROADCAST_WINDOW_MS, frameSpacingMs } from '../../shared/usecases/broadcast';
import { EVENT_API_DELIVERIES_PER_SECOND_PER_ROOM } from '../../shared/usecases/room-channel';

/**
 * The `eventApi` figures of `npm run bench` (docs/DESIGN.md, "Rooms beyond @connections"):
 * 5,000 subscribers in another process on the Event API stand-in (TLS, the real protocol), frames
 * published over HTTP by the broadcaster's publisher, one publish per frame; p99 from publish to
 * delivery over every subscriber and frame; and the dollar figure per viewer-hour at the frame
 * rate a big room gets. The stand-in's authorizer allows everyone here: what is measured is the
 * fan-out, and the authorizer has its own tests.
 */

/** AWS price list: 1 USD per million Event API operations (each delivery is one). */
export const USD_PER_EVENT_API_OPERATION = 1 / 1_000_000;
/** AWS AppSync pricing: 0.08 USD per million connection-minutes. */
export const USD_PER_CONNECTION_MINUTE = 0.08 / 1_000_000;
/** The room size whose frame rate the dollar figure is computed at. */
export const BIG_ROOM_VIEWERS = 100_000;

export interface EventApiBenchOptions {
  subscribers?: number;
  frames?: number;
  /** Subscriptions opened at once by the child process. */
  openConcurrency?: number;
}

export interface EventApiFigures {
  subscribers: number;
  p99Ms: number;
  publishesPerFrame: number;
  usdPerViewerHour: number;
}

/** USD per viewer-hour at the frame rate a room of `viewers` gets (one delivery per frame per viewer). */
export function usdPerViewerHour(viewers: number): number {
  const framesPerSecond = 1000 / frameSpacingMs(BROADCAST_WINDOW_MS, viewers, EVENT_API_DELIVERIES_PER_SECOND_PER_ROOM);
  return 3600 * framesPerSecond * USD_PER_EVENT_API_OPERATION + 60 * USD_PER_CONNECTION_MINUTE;
}

function ask<T extends { type: string }>(child: ChildProcess, message: object, answer: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: T) => {
      if (reply.type !== answer) return;
      child.off('message', onMessage);
      resolve(reply);
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`subscriber process exited (${code})`)));
    child.send(message);
  });
}

export async function runEventApiBench(options: EventApiBenchOptions = {}): Promise<EventApiFigures> {
  const subscribers = options.subscribers ?? 5_000;
  const frames = options.frames ?? 10;
  const publishKey = randomBytes(24).toString('base64url');
  const standIn = await startEventApiStandIn({
    port: 0,
    publishKey,
    authorizer: async () => ({ isAuthorized: true, ttlOverride: 0 }),
  });
  const child = fork(join(__dirname, 'event-api-subscribers.mjs'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const streamId = 'st_BENCH0000000000000000000000';
    const channel = roomChannel(streamId) as string;
    const opened = await ask<{ type: string; count: number }>(
      child,
      {
        type: 'open',
        url: standIn.realtimeUrl,
        ca: standIn.certificate,
        channel,
        token: 'bench',
        host: new URL(standIn.httpUrl).host,
        count: subscribers,
        concurrency: options.openConcurrency ?? 100,
      },
      'opened',
    );
    const publisher = new EventApiPublisher(
      standIn.httpUrl,
      { kind: 'apiKey', key: publishKey },
      { ca: standIn.certificate },
    );
    let requests = 0;
    const fanOutMs: number[] = [];
    for (let frame = 0; frame < frames; frame += 1) {
      const publishedAt = performance.timeOrigin + performance.now();
      const body = { type: 'room', streamId, viewers: opened.count, giftCoins: frame, publishedAt };
      const started = performance.now();
      requests += (await publisher.publishFrames(streamId, [body])).requests;
      // The stand-in answers after handing the frame to every socket: this is its fan-out time.
      fanOutMs.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, BROADCAST_WINDOW_MS));
    }
    // Wait until every delivery has been recorded (or give up after a while: p99 then counts what came).
    let latencies: number[] = [];
    for (let attempt = 0; attempt < 100; attempt += 1) {
      latencies = (await ask<{ type: string; latencies: number[] }>(child, { type: 'stats' }, 'stats')).latencies;
      if (latencies.length >= opened.count * frames) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    const missing = opened.count * frames - sorted.length;
    // A delivery that never came counts as slower than any that did.
    const p99Index = Math.ceil(0.99 * opened.count * frames) - 1;
    const p99Ms = p99Index >= sorted.length ? Number.POSITIVE_INFINITY : (sorted[p99Index] ?? 0);
    process.stderr.write(
      `eventApi bench: publish + fan-out per frame ${fanOutMs.map((ms) => Math.round(ms)).join(', ')} ms\n`,
    );
    if (missing > 0) process.stderr.write(`eventApi bench: ${missing} deliveries never arrived\n`);
    return {
      subscribers: opened.count,
      p99Ms: Math.round(p99Ms * 10) / 10,
      publishesPerFrame: requests / frames,
      usdPerViewerHour: Number(usdPerViewerHour(BIG_ROOM_VIEWERS).toFixed(7)),
    };
  } finally {
    await ask(child, { type: 'close' }, 'closed').catch(() => undefined);
    await standIn.stop();
  }
}

if (require.main === module) {
  runEventApiBench().then(
    (figures) => process.stdout.write(`${JSON.stringify({ eventApi: figures }, null, 2)}\n`),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
      process.exit(1);
    },
  );
}
