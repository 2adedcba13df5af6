import { ADULT, goLive, ledgerFor, seedCoins } from '../support/ledger';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { newId } from '../../shared/adapters/ids';
import { DEFAULT_ECONOMY } from '../../shared/domain/economy';
import { sendGift } from '../../shared/usecases/gifts';
import { MAX_FRAME_BYTES } from '../../shared/usecases/frames';
import type { LocalStack } from '../../infra/local/stack';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startLocalStack } from '../../infra/local/stack';
import { apiClient, RecordingSocket, type ApiClient } from '../support/local-stack';

/*
 * Live rooms under load, through the real gateway, DynamoDB Local, the FIFO queue and the
 * broadcaster: catch-up answers while the broadcaster writes, a window too big for one frame is
 * summarized with every seq covered exactly once, a viewer whose post was throttled catches up,
 * the room's counters come as `room` messages, and a gift after the end's 200 is refused.
 * No timing is asserted: only what arrives, in which order, and what the ledger says.
 */

const WAIT_MS = 30_000;

let stack: LocalStack;
let api: ApiClient;
let store: DynamoLedgerStore;
let dynamo: DynamoDBClient;

beforeAll(async () => {
  const dynamoEndpoint = process.env.TEST_DYNAMODB_ENDPOINT;
  if (!dynamoEndpoint)
    throw new Error(
      'TEST_DYNAMODB_ENDPOINT is not set: run the tests with jest (its global setup starts DynamoDB Local)',
    );
  // Schedules off: the sweeper must not broadcast the summary test's backlog before its nudge does.
  stack = await startLocalStack({
    dataDir: mkdtempSync(join(tmpdir(), 'gifting-rooms-')),
    dynamoEndpoint,
    persistDynamo: false,
    httpPort: 0,
    wsPort: 0,
    tablePrefix: `t${randomBytes(4).toString('hex')}-`,
    schedules: false,
    env: { LOG_LEVEL: 'SILENT' },
  });
  api = apiClient(stack.httpUrl);
  ({ dynamo, store } = ledgerFor(stack));
});
afterAll(async () => {
  dynamo?.destroy();
  await stack?.stop();
});

function gift(token: string, streamId: string, key: string) {
  return api.request('POST', `/v1/streams/${streamId}/gifts`, {
    token,
    body: { giftId: 'rose', quantity: 1 },
    headers: { 'idempotency-key': key },
  });
}

async function senders(prefix: string, count: number, coins: number): Promise<Array<{ id: string; token: string }>> {
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const id = `${prefix}-${index}`;
      await seedCoins(store, id, coins);
      return { id, token: await api.token({ sub: id, ...ADULT }) };
    }),
  );
}

/** Every seq a viewer was told about, singly or in a summary, in the order it arrived. */
function coveredSeqs(socket: RecordingSocket): number[] {
  return socket.messages().flatMap((message) => {
    if (message.type === 'gift') return [message.seq as number];
    if (message.type === 'giftSummary')
      return Array.from({ length: message.toSeq - message.fromSeq + 1 }, (_, index) => message.fromSeq + index);
    return [];
  });
}

describe('live rooms under load', () => {
  it('catch-up answers 200 with committed events in seq order and no gap while a storm is being broadcast', async () => {
    const { streamId } = await goLive(api, 'catchup-creator');
    const storm = await senders('catchup-sender', 4, 100);
    const reader = await api.token({ sub: 'catchup-reader', ...ADULT });
    const perSender = 20;
    let storming = true;
    const sending = Promise.all(
      storm.map(async (sender) => {
        for (let index = 0; index < perSender; index += 1)
          expect((await gift(sender.token, streamId, `cu-${sender.id}-${index}`)).status).toBe(201);
      }),
    ).finally(() => (storming = false));
    const failures: unknown[] = [];
    let reads = 0;
    const readers = Array.from({ length: 3 }, async (_, reader_) => {
      let after = 0;
      while (storming || reads < 30) {
        const page = await api.request('GET', `/v1/streams/${streamId}/events?after=${after}&limit=100`, {
          token: reader,
        });
        reads += 1;
        if (page.status !== 200) {
          failures.push(page.body);
          continue;
        }
        const seqs = (page.body.items as Array<{ seq: number }>).map((event) => event.seq);
        // What is committed, in order, from the seq asked for, with no gap.
        expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, index) => after + 1 + index));
        expect(page.body.nextSeq).toBe(seqs.length > 0 ? seqs[seqs.length - 1] : after);
        // Readers start again from different points so that pages end at many places.
        after = reader_ % 2 === 0 ? page.body.nextSeq : Math.max(0, page.body.nextSeq - 3);
      }
    });
    await Promise.all([sending, ...readers]);
    expect(failures).toEqual([]);
    const total = storm.length * perSender;
    const all = await (async () => {
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        const page = await api.request('GET', `/v1/streams/${streamId}/events?after=0&limit=100`, { token: reader });
        const rest = await api.request('GET', `/v1/streams/${streamId}/events?after=100&limit=100`, { token: reader });
        const items = [...page.body.items, ...rest.body.items];
        if (items.length >= total || Date.now() > deadline) return items;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();
    expect(all.map((event: { seq: number }) => event.seq)).toEqual(
      Array.from({ length: total }, (_, index) => index + 1),
    );
  });

  it('a window too big for one 32 KB frame goes as single gifts plus one giftSummary: every seq exactly once, in order', async () => {
    const { streamId } = await goLive(api, 'summary-creator');
    const viewerToken = await api.token({ sub: 'summary-viewer', ...ADULT });
    const viewer = await RecordingSocket.open(`${stack.wsUrl}/?token=${viewerToken}&streamId=${streamId}`);
    try {
      // The gifts commit while their nudges are lost, so the broadcaster finds all of them at once.
      const backlog = 216;
      const crowd = await senders('summary-sender', 12, 1_000);
      const lost = {
        publish: async () => {
          throw new Error('the queue is down');
        },
      };
      await Promise.all(
        crowd.map(async (sender) => {
          for (let index = 0; index < backlog / crowd.length; index += 1) {
            await sendGift(
              { store, publisher: lost, now: () => new Date(), newId, economy: DEFAULT_ECONOMY },
              { userId: sender.id, ...ADULT, parentalConsent: false },
              { streamId, giftId: 'rose', quantity: 1, idempotencyKey: `sum-${sender.id}-${index}` },
            );
          }
        }),
      );
      const last = await gift(crowd[0]?.token ?? '', streamId, 'sum-last');
      expect(last.status).toBe(201);
      const total = backlog + 1;
      await viewer.waitFor(() => coveredSeqs(viewer).length >= total, WAIT_MS);
      expect(coveredSeqs(viewer)).toEqual(Array.from({ length: total }, (_, index) => index + 1));
      const summaries = viewer.messages().filter((message) => message.type === 'giftSummary');
      expect(summaries.length).toBeGreaterThan(0);
      for (const frame of viewer.frames)
        expect(Buffer.byteLength(JSON.stringify(frame))).toBeLessThanOrEqual(MAX_FRAME_BYTES);
      // A summary adds up what it covers: here every gift is one rose of 1 coin.
      for (const summary of summaries) {
        const covered = summary.toSeq - summary.fromSeq + 1;
        expect(summary.gifts).toEqual([{ giftId: 'rose', quantity: covered, coins: covered }]);
        expect(summary.senders).toBeGreaterThan(0);
      }
      // Catch-up still serves each gift singly.
      const page = await api.request('GET', `/v1/streams/${streamId}/events?after=0&limit=100`, { token: viewerToken });
      expect(page.body.items.map((event: { seq: number }) => event.seq)).toEqual(
        Array.from({ length: 100 }, (_, index) => index + 1),
      );
    } finally {
      await viewer.close();
    }
  });

  it('a viewer whose post stays throttled misses that frame, sees the seq jump, and catches up; room counters arrive as messages', async () => {
    const { streamId } = await goLive(api, 'throttle-creator');
    const [sender] = await senders('throttle-sender', 1, 10);
    const viewerToken = await api.token({ sub: 'throttle-viewer', ...ADULT });
    const viewer = await RecordingSocket.open(`${stack.wsUrl}/?token=${viewerToken}&streamId=${streamId}`);
    try {
      expect((await api.request('GET', `/v1/streams/${streamId}`, { token: viewerToken })).body.viewers).toBe(1);
      // The join's own `room` message first: the fault below is meant for the first gift's frame.
      await viewer.waitFor((all) => all.some((message) => message.type === 'room'), WAIT_MS);
      // Every attempt of the next post is answered 429 (the poster retries a few times, then gives up on that frame).
      stack.gateway.injectConnectionsFault({ kind: 'throttle', times: 3 });
      const first = await gift(sender?.token ?? '', streamId, 'thr-1');
      expect(first.status).toBe(201);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const second = await gift(sender?.token ?? '', streamId, 'thr-2');
      const messages = await viewer.waitFor(
        (all) => all.some((message) => message.giftTxId === second.body.giftTxId),
        WAIT_MS,
      );
      const seen = messages.filter((message) => message.type === 'gift').map((message) => message.seq);
      expect(seen).toEqual([2]);
      // The jump from 0 to 2 tells the client it missed seq 1: catch-up has it.
      const missed = await api.request('GET', `/v1/streams/${streamId}/events?after=0&limit=100`, {
        token: viewerToken,
      });
      expect(missed.body.items.map((event: { seq: number; giftTxId: string }) => [event.seq, event.giftTxId])).toEqual([
        [1, first.body.giftTxId],
        [2, second.body.giftTxId],
      ]);
      // The counters follow, in the gift's frame or (when the frame came within a second of the
      // last `room`) once the second is over.
      const withCounters = await viewer.waitFor(
        (all) => all.some((message) => message.type === 'room' && message.giftCoins === 2),
        WAIT_MS,
      );
      const rooms = withCounters.filter((message) => message.type === 'room');
      expect(rooms[rooms.length - 1]).toEqual({ type: 'room', streamId, viewers: 1, giftCoins: 2 });
    } finally {
      await viewer.close();
    }
  });

  it("a gift sent after the end's 200 gets 409 STREAM_NOT_LIVE, streamEnded comes after every earlier gift, and no gift follows it", async () => {
    const { token: creatorToken, streamId } = await goLive(api, 'end-creator');
    const [sender] = await senders('end-sender', 1, 10);
    const viewer = await RecordingSocket.open(`${stack.wsUrl}/?token=${sender?.token}&streamId=${streamId}`);
    try {
      // Warm the sender's instance cache with the live stream.
      const before = await gift(sender?.token ?? '', streamId, 'end-1');
      expect(before.status).toBe(201);
      expect((await api.request('POST', `/v1/streams/${streamId}/end`, { token: creatorToken })).status).toBe(200);
      const after = await gift(sender?.token ?? '', streamId, 'end-2');
      expect(after.status).toBe(409);
      expect(after.body.error.code).toBe('STREAM_NOT_LIVE');
      const messages = await viewer.waitFor((all) => all.some((message) => message.type === 'streamEnded'), WAIT_MS);
      const order = messages
        .filter((message) => message.type === 'gift' || message.type === 'streamEnded')
        .map((message) => (message.type === 'gift' ? message.giftTxId : message.type));
      expect(order).toEqual([before.body.giftTxId, 'streamEnded']);
      // The refused gift spent nothing.
      expect((await api.request('GET', '/v1/wallet', { token: sender?.token ?? '' })).body.coins).toBe(9);
    } finally {
      await viewer.close();
    }
  });
});
