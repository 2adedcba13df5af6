import type { GiftEvent } from './streams';

/**
 * What one broadcast frame holds (docs/API.md, WebSocket): a room's gift events of one window, its
 * `room` counters and `streamEnded`, packed into one message of at most one API Gateway billing
 * unit. When the window's gifts do not fit, as many single `gift` events as fit go first and one
 * `giftSummary` covers the rest, so every seq is covered by exactly one of them, in order.
 */

/** API Gateway splits WebSocket frames at 32 KB and bills each 32 KB as one message. */
export const MAX_FRAME_BYTES = 32 * 1024;
/** Room for the `{"type":"batch","events":[...]}` envelope and a separator per message. */
const BATCH_ENVELOPE_BYTES = 32;

export interface GiftSummary {
  type: 'giftSummary';
  streamId: string;
  fromSeq: number;
  toSeq: number;
  gifts: Array<{ giftId: string; quantity: number; coins: number }>;
  senders: number;
}

export interface RoomMessage {
  type: 'room';
  streamId: string;
  viewers: number;
  giftCoins: number;
}

export interface StreamEndedMessage {
  type: 'streamEnded';
  streamId: string;
}

export type FrameMessage = GiftEvent | GiftSummary | RoomMessage | StreamEndedMessage;

export interface Frame {
  /** The message as posted: a lone message as itself, several as one `batch`. */
  body: FrameMessage | { type: 'batch'; events: FrameMessage[] };
  bytes: number;
  /** Gift events sent singly and gifts covered by the summary. */
  singles: number;
  summarized: number;
}

const bytesOf = (value: unknown): number => Buffer.byteLength(JSON.stringify(value));

/** One summary for a run of consecutive events: per gift type, the quantity and coins. */
export function summarize(streamId: string, events: GiftEvent[]): GiftSummary {
  const byGift = new Map<string, { giftId: string; quantity: number; coins: number }>();
  for (const event of events) {
    const entry = byGift.get(event.giftId) ?? { giftId: event.giftId, quantity: 0, coins: 0 };
    entry.quantity += event.quantity;
    entry.coins += event.coins;
    byGift.set(event.giftId, entry);
  }
  return {
    type: 'giftSummary',
    streamId,
    fromSeq: events[0]?.seq ?? 0,
    toSeq: events[events.length - 1]?.seq ?? 0,
    gifts: [...byGift.values()].sort((a, b) => (a.giftId < b.giftId ? -1 : a.giftId > b.giftId ? 1 : 0)),
    senders: new Set(events.map((event) => event.fromUserId)).size,
  };
}

function pack(messages: FrameMessage[]): Frame['body'] {
  const [only] = messages;
  return messages.length === 1 && only ? only : { type: 'batch', events: messages };
}

/**
 * One frame for a window: `events` in seq order, then `room`, then `streamEnded`. Returns
 * undefined when there is nothing to send. Never over `maxBytes`, whatever the number of events:
 * the summary's size is bounded by the catalog (one entry per gift type), not by the events.
 */
export function buildFrame(
  streamId: string,
  events: GiftEvent[],
  extras: { room?: RoomMessage; ended?: boolean },
  maxBytes = MAX_FRAME_BYTES,
): Frame | undefined {
  const tail: FrameMessage[] = [
    ...(extras.room ? [extras.room] : []),
    ...(extras.ended ? [{ type: 'streamEnded' as const, streamId }] : []),
  ];
  const all: FrameMessage[] = [...events, ...tail];
  if (all.length === 0) return undefined;
  const whole = pack(all);
  const wholeBytes = bytesOf(whole);
  if (wholeBytes <= maxBytes) return { body: whole, bytes: wholeBytes, singles: events.length, summarized: 0 };

  // Reserve the largest summary this window could need (every event in it), then take singles
  // in order while they fit; the summary covers exactly the rest.
  const reserve =
    BATCH_ENVELOPE_BYTES +
    bytesOf(summarize(streamId, events)) +
    tail.reduce((sum, message) => sum + bytesOf(message) + 1, 0);
  let used = reserve;
  let fitting = 0;
  for (const event of events) {
    const size = bytesOf(event) + 1;
    if (used + size > maxBytes) break;
    used += size;
    fitting += 1;
  }
  const rest = events.slice(fitting);
  const messages: FrameMessage[] = [
    ...events.slice(0, fitting),
    ...(rest.length > 0 ? [summarize(streamId, rest)] : []),
    ...tail,
  ];
  const body = pack(messages);
  return { body, bytes: bytesOf(body), singles: fitting, summarized: rest.length };
}
