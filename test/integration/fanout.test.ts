import { ADULT, goLive, ledgerFor, seedCoins } from '../support/ledger';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import type { LocalStack } from '../../infra/local/stack';
import { CONNECTION_SETTLE_MS } from '../../shared/adapters/dynamo/connections-store';
import { apiClient, RecordingSocket, startTestStack, type ApiClient } from '../support/local-stack';

/*
 * Fan-out through real WebSocket clients, the local gateway's @connections API, the FIFO queue
 * and the broadcaster: every viewer gets every gift once, in seq order, packed into batch frames
 * when the stream is busy; a vanished client is forgotten at its first GoneException, alone.
 */

const VIEWERS = 200;
const SENDERS = 5;
const GIFTS_PER_SENDER = 8;
/** Sockets opened at once: the local gateway runs the authorizer and $connect for each. */
const OPEN_CONCURRENCY = 50;

let stack: LocalStack;
let api: ApiClient;
let store: DynamoLedgerStore;
let dynamo: DynamoDBClient;

beforeAll(async () => {
  // Hundreds of sockets of one viewer user on one stream: lift the per-user caps here.
  stack = await startTestStack({ WS_MAX_CONNECTIONS_PER_USER: '1000', WS_MAX_CONNECTIONS_PER_USER_PER_STREAM: '1000' });
  api = apiClient(stack.httpUrl);
  ({ dynamo, store } = ledgerFor(stack));
});
afterAll(async () => {
  dynamo?.destroy();
  await stack?.stop();
});

async function openViewers(count: number, url: string): Promise<RecordingSocket[]> {
  const sockets: RecordingSocket[] = [];
  for (let start = 0; start < count; start += OPEN_CONCURRENCY) {
    sockets.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(OPEN_CONCURRENCY, count - start) }, () => RecordingSocket.open(url)),
      )),
    );
  }
  return sockets;
}

/** Opens one socket and returns it with the connection id the gateway gave it. */
async function openIdentified(url: string): Promise<{ socket: RecordingSocket; connectionId: string }> {
  const before = new Set(stack.gateway.openConnectionIds());
  const socket = await RecordingSocket.open(url);
  const deadline = Date.now() + 5_000;
  for (;;) {
    const fresh = stack.gateway.openConnectionIds().filter((id) => !before.has(id));
    if (fresh.length === 1 && fresh[0]) return { socket, connectionId: fresh[0] };
    if (Date.now() > deadline) throw new Error(`could not identify the new connection (${fresh.length} new)`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const giftEvents = (socket: RecordingSocket) => socket.messages().filter((message) => message.type === 'gift');

describe('fan-out', () => {
  it(`${VIEWERS} WebSocket clients each receive every gift exactly once, in seq order, across batch frames`, async () => {
    const { streamId } = await goLive(api, 'fan-creator');
    const viewerToken = await api.token({ sub: 'fan-viewer', ...ADULT });
    const viewers = await openViewers(VIEWERS, `${stack.wsUrl}/?token=${viewerToken}&streamId=${streamId}`);
    try {
      expect((await api.request('GET', `/v1/streams/${streamId}`, { token: viewerToken })).body.viewers).toBe(VIEWERS);
      const senders = await Promise.all(
        Array.from({ length: SENDERS }, async (_, index) => {
          await seedCoins(store, `fan-sender-${index}`, 1000);
          return api.token({ sub: `fan-sender-${index}`, ...ADULT });
        }),
      );
      const postsBefore = [...stack.gateway.postCounts.values()].reduce((sum, count) => sum + count, 0);
      // The joins' `room` frames (a join sends the room's counters) may still be going out meanwhile.
      const started = Date.now();
      // A storm: every sender fires all of its gifts at once.
      const answers = await Promise.all(
        senders.flatMap((token, sender) =>
          Array.from({ length: GIFTS_PER_SENDER }, (_, index) =>
            api.request('POST', `/v1/streams/${streamId}/gifts`, {
              token,
              body: { giftId: 'rose', quantity: 1 + index },
              headers: { 'idempotency-key': `fan-${sender}-${index}` },
            }),
          ),
        ),
      );
      for (const answer of answers) expect(answer.status).toBe(201);
      const committedMs = Date.now() - started;
      const total = SENDERS * GIFTS_PER_SENDER;
      const expectedIds = new Set(answers.map((answer) => answer.body.giftTxId as string));

      await Promise.all(
        viewers.map((viewer) =>
          viewer.waitFor((messages) => messages.filter((message) => message.type === 'gift').length >= total, 20_000),
        ),
      );
      const elapsedMs = Date.now() - started;
      for (const viewer of viewers) {
        const events = giftEvents(viewer);
        expect(events).toHaveLength(total);
        expect(events.map((event) => event.seq)).toEqual(Array.from({ length: total }, (_, index) => index + 1));
        expect(new Set(events.map((event) => event.giftTxId))).toEqual(expectedIds);
      }
      // Every viewer saw the same frames, and a storm packs events into batch frames.
      const frames = viewers[0]?.frames.filter((frame) => frame.type === 'gift' || frame.type === 'batch') ?? [];
      expect(frames.some((frame) => frame.type === 'batch')).toBe(true);
      expect(frames.length).toBeLessThan(total);
      for (const viewer of viewers)
        expect(viewer.frames.filter((frame) => frame.type === 'gift' || frame.type === 'batch')).toEqual(frames);
      const posts = [...stack.gateway.postCounts.values()].reduce((sum, count) => sum + count, 0) - postsBefore;
      // One post per viewer per frame (not per gift, which would be total x VIEWERS), plus a few
      // `room` frames alone: the joins' counters, and the counters the last gift frame could not
      // carry within a second of the previous `room`.
      expect(posts).toBeGreaterThanOrEqual(frames.length * VIEWERS);
      expect(posts).toBeLessThanOrEqual((frames.length + 3) * VIEWERS);
      // The measured figures, for the report.
      process.stdout.write(
        `fan-out: ${total} gifts to ${VIEWERS} viewers in ${frames.length} frames (${posts} posts instead of ${total * VIEWERS}), all committed ${committedMs} ms and all delivered ${elapsedMs} ms after the storm began\n`,
      );

      const events = await api.request('GET', `/v1/streams/${streamId}/events?after=0&limit=100`, {
        token: viewerToken,
      });
      expect(events.body.items).toEqual(giftEvents(viewers[0] as RecordingSocket));
    } finally {
      await Promise.all(viewers.map((viewer) => viewer.close()));
    }
  });

  it('a connection closed without $disconnect is removed at its first GoneException, and no other connection is touched', async () => {
    const { streamId } = await goLive(api, 'gone-creator');
    // Three viewers, not three tabs of one: a user's newer connection takes the room over from the older.
    const [token, tokenA, tokenB] = await Promise.all(
      ['gone-viewer', 'stay-viewer-a', 'stay-viewer-b'].map((sub) => api.token({ sub, ...ADULT })),
    );
    const urlOf = (viewerToken: string | undefined) =>
      `${stack.wsUrl}/?token=${String(viewerToken)}&streamId=${streamId}`;
    const vanished = await openIdentified(urlOf(token));
    const stayA = await openIdentified(urlOf(tokenA));
    const stayB = await openIdentified(urlOf(tokenB));
    try {
      expect((await api.request('GET', `/v1/streams/${streamId}`, { token })).body.viewers).toBe(3);
      // Past the handshake window, in which a post finding a connection gone leaves it be (removeGone).
      await new Promise((resolve) => setTimeout(resolve, CONNECTION_SETTLE_MS));
      // Joins send the room's counters: posts before the drop reached a live connection.
      const before = new Map(
        [vanished, stayA, stayB].map((entry) => [
          entry.connectionId,
          stack.gateway.postCounts.get(entry.connectionId) ?? 0,
        ]),
      );
      const postsSince = (connectionId: string) =>
        (stack.gateway.postCounts.get(connectionId) ?? 0) - (before.get(connectionId) ?? 0);
      stack.gateway.dropConnectionSilently(vanished.connectionId);
      await seedCoins(store, 'gone-sender', 10);
      const sender = await api.token({ sub: 'gone-sender', ...ADULT });
      const first = await api.request('POST', `/v1/streams/${streamId}/gifts`, {
        token: sender,
        body: { giftId: 'rose', quantity: 1 },
        headers: { 'idempotency-key': 'gone-1' },
      });
      expect(first.status).toBe(201);
      for (const stay of [stayA, stayB])
        await stay.socket.waitFor((messages) => messages.some((message) => message.giftTxId === first.body.giftTxId));
      // The posts go out side by side: the one to the vanished connection may land after the others.
      const postedBy = Date.now() + 10_000;
      while (postsSince(vanished.connectionId) === 0 && Date.now() < postedBy)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect(postsSince(vanished.connectionId)).toBe(1);
      // The gone connection leaves the room's viewer counter when its removal lands, which can be
      // just after the other viewers' posts.
      const deadline = Date.now() + 10_000;
      let afterFirst = await api.request('GET', `/v1/streams/${streamId}`, { token });
      while (afterFirst.body.viewers !== 2 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        afterFirst = await api.request('GET', `/v1/streams/${streamId}`, { token });
      }
      expect(afterFirst.body.viewers).toBe(2);

      const second = await api.request('POST', `/v1/streams/${streamId}/gifts`, {
        token: sender,
        body: { giftId: 'rose', quantity: 1 },
        headers: { 'idempotency-key': 'gone-2' },
      });
      for (const stay of [stayA, stayB]) {
        const events = (
          await stay.socket.waitFor((messages) => messages.some((message) => message.giftTxId === second.body.giftTxId))
        ).filter((message) => message.type === 'gift');
        expect(events.map((event) => event.seq)).toEqual([1, 2]);
        expect(postsSince(stay.connectionId)).toBe(2);
      }
      // Forgotten at the first GoneException: never posted to again.
      expect(postsSince(vanished.connectionId)).toBe(1);
      expect((await api.request('GET', `/v1/streams/${streamId}`, { token })).body.viewers).toBe(2);
    } finally {
      await Promise.all([vanished, stayA, stayB].map((entry) => entry.socket.close()));
    }
  });

  it('join moves a connection to another stream', async () => {
    const first = await goLive(api, 'join-creator-1');
    const second = await goLive(api, 'join-creator-2');
    const token = await api.token({ sub: 'join-viewer', ...ADULT });
    await seedCoins(store, 'join-viewer', 10);
    const socket = await RecordingSocket.open(`${stack.wsUrl}/?token=${token}&streamId=${first.streamId}`);
    try {
      socket.send({ action: 'join', streamId: second.streamId });
      await socket.waitFor((messages) => messages.some((message) => message.type === 'joined'));
      expect((await api.request('GET', `/v1/streams/${second.streamId}`, { token })).body.viewers).toBe(1);
      expect((await api.request('GET', `/v1/streams/${first.streamId}`, { token })).body.viewers).toBe(0);
      // sendGift goes to the stream the connection is on now.
      socket.send({ action: 'sendGift', requestId: 'join-gift', giftId: 'rose', quantity: 1 });
      const messages = await socket.waitFor((all) => all.some((message) => message.type === 'gift'));
      expect(messages.find((message) => message.type === 'gift')?.streamId).toBe(second.streamId);
      socket.send({ action: 'join', streamId: 'st_missing' });
      const error = (await socket.waitFor((all) => all.some((message) => message.type === 'error'))).find(
        (message) => message.type === 'error',
      );
      expect(error.error.code).toBe('NOT_FOUND');
    } finally {
      await socket.close();
    }
  });
});
