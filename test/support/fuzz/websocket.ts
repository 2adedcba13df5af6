import fc from 'fast-check';
import { z } from 'zod';
import WebSocket from 'ws';
import { WEBSOCKET_ROUTES, type WebSocketRoute } from '../../../infra/routes';
import { type FuzzWorld, hostileString, jsonSchemaOf, pastSchema, toJsonText, validLooking } from './arbitraries';
import { type Caller, HOSTILE_SEGMENTS, percentEncode, tamper } from './http-cases';
import type { WsSpec } from './specs';

/** WebSocket frames and upgrades to fuzz, and a socket read one reply at a time. */

// ---------------------------------------------------------------- WebSocket frames

const WS_NOT_JSON = [
  '',
  ' ',
  '{',
  'ping',
  'null',
  '[]',
  '"ping"',
  '{"action":}',
  '\uFEFF{"action":"ping"}',
  '{"action":"ping"',
  'undefined',
];

export type FrameCase =
  | { kind: 'text'; text: string }
  | { kind: 'json'; value: unknown }
  | { kind: 'binary'; bytes: Uint8Array }
  | { kind: 'large'; bytes: number };

/** The gateway refuses frames over 128 KB by closing; the routes answer frames over 32 KB with an error. */
export const WS_LARGE_FRAME_BYTES = { min: 32 * 1024 + 1, max: 120 * 1024 };

export function frameArbitrary(
  route: WebSocketRoute,
  spec: WsSpec | undefined,
  world: FuzzWorld,
): fc.Arbitrary<FrameCase> {
  const action = route.routeKey.startsWith('$') ? undefined : route.routeKey;
  const node = spec
    ? jsonSchemaOf(spec.body)
    : { type: 'object', properties: action ? { action: { const: action } } : {}, required: action ? ['action'] : [] };
  const known = WEBSOCKET_ROUTES.map((candidate) => candidate.routeKey);
  const json = (arbitrary: fc.Arbitrary<unknown>) => arbitrary.map((value): FrameCase => ({ kind: 'json', value }));
  const withAction = (arbitrary: fc.Arbitrary<unknown>) =>
    arbitrary.map((value) =>
      action && typeof value === 'object' && value !== null && !Array.isArray(value) ? { ...value, action } : value,
    );
  return fc.oneof(
    { arbitrary: json(validLooking(node, world)), weight: 6 },
    // Past the schema but still routed here (the action kept), and past it entirely.
    { arbitrary: json(withAction(pastSchema(node, world))), weight: 6 },
    { arbitrary: json(pastSchema(node, world)), weight: 2 },
    {
      arbitrary: json(
        fc.record({
          action: fc.oneof(
            fc.constantFrom<unknown>(
              ...known,
              'PING',
              'sendgift',
              '',
              null,
              1,
              ['ping'],
              { action: 'ping' },
              '$default',
              '__proto__',
            ),
            hostileString,
          ),
        }),
      ),
      weight: 2,
    },
    { arbitrary: fc.constantFrom(...WS_NOT_JSON).map((text): FrameCase => ({ kind: 'text', text })), weight: 1 },
    {
      arbitrary: fc.string({ unit: 'binary', maxLength: 100 }).map((text): FrameCase => ({ kind: 'text', text })),
      weight: 1,
    },
    {
      arbitrary: fc.uint8Array({ minLength: 1, maxLength: 100 }).map((bytes): FrameCase => ({ kind: 'binary', bytes })),
      weight: 1,
    },
    { arbitrary: fc.integer(WS_LARGE_FRAME_BYTES).map((bytes): FrameCase => ({ kind: 'large', bytes })), weight: 1 },
  );
}

export function frameData(frame: FrameCase): { data: string | Buffer; binary: boolean } {
  switch (frame.kind) {
    case 'text':
      return { data: frame.text, binary: false };
    case 'json':
      return { data: toJsonText(frame.value), binary: false };
    case 'binary':
      return { data: Buffer.from(frame.bytes), binary: true };
    case 'large':
      return {
        data: JSON.stringify({ action: 'ping', requestId: 'large', pad: 'x'.repeat(frame.bytes) }),
        binary: false,
      };
  }
}

/** The requestId a reply to this frame must echo (docs/API.md: "with the requestId when there is one"). */
export function expectedRequestId(frame: FrameCase): string | undefined {
  if (frame.kind === 'large') return 'large';
  if (frame.kind !== 'json') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(frameData(frame).data.toString());
  } catch {
    return undefined;
  }
  const parsed = z.object({ requestId: z.string().max(255) }).safeParse(value);
  return parsed.success ? parsed.data.requestId : undefined;
}
/**
 * Server-to-client pushes that are not replies (docs/API.md, WebSocket). `room` comes on its own when
 * a viewer joins or leaves, between a frame and its reply.
 */
export const WS_PUSH_TYPES = new Set(['gift', 'giftSummary', 'room', 'wallet', 'streamEnded', 'batch']);
/** A socket whose messages are read one reply at a time. */
export class ReplyQueue {
  private readonly replies: string[] = [];
  private waiter: (() => void) | undefined;
  closed: { code: number } | undefined;

  constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const text = String(data);
      try {
        const type = (JSON.parse(text) as { type?: unknown } | null)?.type;
        if (typeof type === 'string' && WS_PUSH_TYPES.has(type)) return;
      } catch {
        /* not JSON: a reply to check */
      }
      this.replies.push(text);
      this.waiter?.();
    });
    socket.on('close', (code) => {
      this.closed = { code };
      this.waiter?.();
    });
  }

  static open(url: string): Promise<ReplyQueue> {
    return new Promise((resolvePromise, reject) => {
      const socket = new WebSocket(url);
      socket.once('open', () => resolvePromise(new ReplyQueue(socket)));
      socket.once('error', reject);
      socket.once('unexpected-response', (_request, response) =>
        reject(new Error(`upgrade answered ${response.statusCode ?? 0}`)),
      );
    });
  }

  async next(timeoutMs: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length === 0 && !this.closed && Date.now() < deadline) {
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, deadline - Date.now());
        this.waiter = () => {
          clearTimeout(timer);
          wake();
        };
      });
      this.waiter = undefined;
    }
    return this.replies.shift();
  }

  close(): Promise<void> {
    return new Promise((resolvePromise) => {
      if (this.socket.readyState === WebSocket.CLOSED) return resolvePromise();
      this.socket.once('close', () => resolvePromise());
      this.socket.close();
    });
  }
}

/** Query strings for the upgrade: the token and streamId in every shape. */
export function upgradeQueryArbitrary(
  callers: Caller[],
  world: FuzzWorld,
): fc.Arbitrary<{ query: string; validToken: boolean }> {
  const token = fc.oneof(
    {
      arbitrary: fc
        .constantFrom(...callers)
        .map((caller) => ({ value: caller.token as string | undefined, valid: true })),
      weight: 4,
    },
    {
      arbitrary: fc
        .constantFrom<string | undefined>(
          undefined,
          '',
          'garbage',
          'a.b.c',
          'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
          'A'.repeat(9000),
        )
        .map((value) => ({ value, valid: false })),
      weight: 2,
    },
    {
      arbitrary: fc
        .tuple(fc.constantFrom(...callers), fc.nat())
        .map(([caller, at]) => ({ value: tamper(caller.token, at) as string | undefined, valid: false })),
      weight: 1,
    },
  );
  const streamId = fc.oneof(
    fc.constant<string | undefined>(undefined),
    fc.constantFrom(...world.knownIds).map((id) => percentEncode(id)),
    fc.constantFrom(...HOSTILE_SEGMENTS),
    fc.string({ unit: 'binary', maxLength: 30 }).map(percentEncode),
  );
  return fc
    .record({ token, streamId, duplicate: fc.boolean() })
    .map(({ token: chosen, streamId: stream, duplicate }) => {
      const parts: string[] = [];
      if (chosen.value !== undefined) parts.push(`token=${encodeURIComponent(chosen.value)}`);
      if (duplicate && chosen.value !== undefined) parts.push('token=garbage');
      if (stream !== undefined) parts.push(`streamId=${stream}`);
      // A duplicated token is joined with a comma (API Gateway's way): never a valid token.
      return { query: parts.join('&'), validToken: chosen.valid && !duplicate };
    });
}

/** Opens an upgrade and reports the status: 101, or the refusal's status. Never hangs. */
export function tryUpgrade(
  url: string,
  timeoutMs = 10_000,
): Promise<{ status: number; socket?: WebSocket; error?: string }> {
  return new Promise((resolvePromise) => {
    const socket = new WebSocket(url);
    const timer = setTimeout(() => {
      socket.terminate();
      resolvePromise({ status: 0, error: 'timeout' });
    }, timeoutMs);
    socket.once('open', () => {
      clearTimeout(timer);
      resolvePromise({ status: 101, socket });
    });
    socket.once('unexpected-response', (_request, response) => {
      clearTimeout(timer);
      resolvePromise({ status: response.statusCode ?? 0 });
      response.resume();
      socket.terminate();
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      resolvePromise({ status: 0, error: error.message });
    });
  });
}
