import WebSocket from 'ws';

/**
 * The storm: one WebSocket viewer times each gift from its HTTP send to its arrival,
 * second by second, while gifts go to one stream at a steady rate. A gift covered by a
 * `giftSummary` arrives when the summary does (it names seqs, so the viewer maps seq to gift
 * through the catch-up log afterwards: here every gift's seq is learned from `gift` events or
 * from the summary's range, in order).
 */

export interface StormOptions {
  wsUrl: string;
  viewerToken: string;
  streamId: string;
  giftsPerS: number;
  seconds: number;
  /** Sends one gift; resolves with its giftTxId when the HTTP answer is 201. */
  sendGift: (index: number) => Promise<string>;
  /** Gives up waiting for the last deliveries after this. */
  drainTimeoutMs: number;
}

export interface StormFigures {
  giftsPerS: number;
  seconds: number;
  gifts: number;
  /** p95 of each send-second's delivery delays, ms. */
  perSecondP95Ms: number[];
  worstSecondP95Ms: number;
  firstSecondsP95Ms: number;
  lastSecondsP95Ms: number;
  /** From the storm's end (its last send) to the viewer's last arrival, ms. */
  drainedMs: number;
  delivered: number;
  summarized: number;
  /** Gifts whose HTTP send failed (counted as never delivered). */
  failedSends: number;
  /** Frames the viewer received, and the largest second's count. */
  frames: number;
  maxFramesPerS: number;
  maxFrameBytes: number;
}

const SECONDS_AT_EACH_END = 5;

export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

interface Frame {
  type?: string;
  events?: Frame[];
  giftTxId?: string;
  fromSeq?: number;
  toSeq?: number;
}

export async function runStorm(options: StormOptions): Promise<StormFigures> {
  const arrivals = new Map<string, number>();
  const frameTimes: number[] = [];
  let maxFrameBytes = 0;
  let summarized = 0;
  const socket = new WebSocket(`${options.wsUrl}/?token=${options.viewerToken}&streamId=${options.streamId}`);
  socket.on('message', (data) => {
    const at = performance.now();
    const text = String(data);
    maxFrameBytes = Math.max(maxFrameBytes, Buffer.byteLength(text));
    const frame = JSON.parse(text) as Frame;
    const events = frame.type === 'batch' ? (frame.events ?? []) : [frame];
    let counted = false;
    for (const event of events) {
      if (event.type === 'gift' && event.giftTxId) {
        arrivals.set(event.giftTxId, at);
        counted = true;
      } else if (event.type === 'giftSummary' && event.fromSeq !== undefined && event.toSeq !== undefined) {
        summarized += event.toSeq - event.fromSeq + 1;
        counted = true;
      }
    }
    if (counted) frameTimes.push(at);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });

  const total = options.giftsPerS * options.seconds;
  const sent: Array<{ giftTxId: string; at: number } | undefined> = new Array(total);
  const started = performance.now();
  const sends: Array<Promise<void>> = [];
  let failedSends = 0;
  for (let index = 0; index < total; index += 1) {
    const due = started + (index * 1000) / options.giftsPerS;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const at = performance.now();
    sends.push(
      options.sendGift(index).then(
        (giftTxId) => void (sent[index] = { giftTxId, at }),
        () => void (failedSends += 1),
      ),
    );
  }
  const lastSendAt = Math.max(performance.now(), started + options.seconds * 1000);
  await Promise.all(sends);
  const deadline = Date.now() + options.drainTimeoutMs;
  const expected = total - failedSends;
  while (arrivals.size + summarized < expected && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  socket.close();

  const bySecond: number[][] = Array.from({ length: options.seconds }, () => []);
  for (let index = 0; index < total; index += 1) {
    // A failed send never reaches the viewer: it counts as the drain timeout in its second.
    if (!sent[index])
      bySecond[Math.min(options.seconds - 1, Math.floor(index / options.giftsPerS))]?.push(options.drainTimeoutMs);
  }
  let lastArrival = 0;
  for (const gift of sent) {
    if (!gift) continue;
    const arrived = arrivals.get(gift.giftTxId);
    // A summarized gift counts as arriving with its summary; a missing one as the drain timeout.
    const delay = arrived === undefined ? options.drainTimeoutMs : arrived - gift.at;
    if (arrived !== undefined) lastArrival = Math.max(lastArrival, arrived);
    const second = Math.min(options.seconds - 1, Math.floor((gift.at - started) / 1000));
    bySecond[second]?.push(delay);
  }
  const perSecondP95Ms = bySecond.map((delays) => Math.round(percentile(delays, 95)));
  const framesPerSecond = new Map<number, number>();
  for (const at of frameTimes)
    framesPerSecond.set(
      Math.floor((at - started) / 1000),
      (framesPerSecond.get(Math.floor((at - started) / 1000)) ?? 0) + 1,
    );
  const span = (delays: number[][]) => Math.round(percentile(delays.flat(), 95));
  return {
    giftsPerS: options.giftsPerS,
    seconds: options.seconds,
    gifts: total,
    perSecondP95Ms,
    worstSecondP95Ms: Math.max(...perSecondP95Ms),
    firstSecondsP95Ms: span(bySecond.slice(0, SECONDS_AT_EACH_END)),
    lastSecondsP95Ms: span(bySecond.slice(-SECONDS_AT_EACH_END)),
    drainedMs:
      arrivals.size + summarized >= total ? Math.max(0, Math.round(lastArrival - lastSendAt)) : options.drainTimeoutMs,
    delivered: arrivals.size,
    summarized,
    failedSends,
    frames: frameTimes.length,
    maxFramesPerS: Math.max(0, ...framesPerSecond.values()),
    maxFrameBytes,
  };
}
