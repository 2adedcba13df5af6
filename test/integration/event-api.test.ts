import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import WebSocket from 'ws';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Amplify } from 'aws-amplify';
import { events } from 'aws-amplify/data';
import type { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { roomChannel } from '../../shared/events/channels';
import { signLocalToken } from '../../infra/local/issuer';
import { LOCAL_ISSUER, startLocalStack, type LocalStack } from '../../infra/local/stack';
import { ADULT, closeBalancedBooks, goLive, ledgerFor, seedCoins } from '../support/ledger';
import { apiClient, RecordingSocket, type ApiClient } from '../support/local-stack';

/*
 * The Event API stand-in checked with AWS's own client (aws-amplify's `events`), over TLS with
 * the certificate the stand-in generated: a viewer subscribes to a live room's channel and
 * receives the broadcaster's frames, the same frames a joined @connections viewer receives; a
 * channel of an unknown, ended or foreign room is refused; a client's publish (over the socket
 * or HTTP) is refused; an expired token is refused at connect.
 */

const WAIT_MS = 30_000;

let stack: LocalStack;
let api: ApiClient;
let store: DynamoLedgerStore;
let dynamo: DynamoDBClient;
let dataDir: string;

beforeAll(async () => {
  const dynamoEndpoint = process.env.TEST_DYNAMODB_ENDPOINT;
  if (!dynamoEndpoint) throw new Error('TEST_DYNAMODB_ENDPOINT is not set: run the tests with jest');
  dataDir = mkdtempSync(join(tmpdir(), 'gifting-events-'));
  stack = await startLocalStack({
    dataDir,
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
  // Node 20 has no global WebSocket: Amplify gets `ws`, trusting the stand-in's certificate.
  const ca = stack.eventApi.certificate;
  class TrustingWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { ca });
    }
  }
  (globalThis as { WebSocket?: unknown }).WebSocket = TrustingWebSocket;
  Amplify.configure({
    API: { Events: { endpoint: stack.eventApi.httpUrl, region: 'us-east-1', defaultAuthMode: 'lambda' } },
  });
});
afterAll(async () => {
  await events.closeAll().catch(() => undefined);
  await closeBalancedBooks(dynamo, stack.tableNames.ledger).finally(() => stack?.stop());
});

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function unpack(frame: any): any[] {
  return frame?.type === 'batch' ? frame.events : [frame];
}

/** POST /event as a client would, with its own token: status and body. */
function clientHttpPublish(headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const body = JSON.stringify({ channel: '/rooms/anything', events: [JSON.stringify({ type: 'gift', seq: 1 })] });
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      stack.eventApi.httpUrl,
      { method: 'POST', ca: stack.eventApi.certificate, headers: { 'content-type': 'application/json', ...headers } },
      (response) => {
        let text = '';
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

test('a live room channel delivers the same frames as @connections, through the Amplify events client', async () => {
  const { streamId } = await goLive(api, 'ev-creator');
  const channelPath = roomChannel(streamId);
  expect(channelPath).toMatch(/^\/rooms\/[A-Za-z0-9-]+$/);
  const viewerToken = await api.token({ sub: 'ev-viewer', ...ADULT });

  const received: any[] = [];
  const channel = await events.connect(channelPath as string, { authMode: 'lambda', authToken: viewerToken });
  const subscription = channel.subscribe({ next: (data: any) => received.push(data.event), error: () => undefined });
  await (subscription as unknown as { ready: Promise<unknown> }).ready;
  expect(stack.eventApi.subscribers(channelPath as string)).toBe(1);

  const joined = await RecordingSocket.open(
    `${stack.wsUrl}/?token=${encodeURIComponent(viewerToken)}&streamId=${encodeURIComponent(streamId)}`,
  );
  await seedCoins(store, 'ev-sender', 1_000);
  const senderToken = await api.token({ sub: 'ev-sender', ...ADULT });
  const sent = await api.request('POST', `/v1/streams/${streamId}/gifts`, {
    token: senderToken,
    body: { giftId: 'rose', quantity: 1 },
    headers: { 'idempotency-key': 'ev-gift-1' },
  });
  expect(sent.status).toBe(201);

  await until(() => received.flatMap(unpack).some((message) => message.type === 'gift'), 'the gift on the channel');
  await until(() => joined.messages().some((message) => message.type === 'gift'), 'the gift on @connections');
  const onChannel = received.flatMap(unpack).find((message) => message.type === 'gift');
  const onSocket = joined.messages().find((message) => message.type === 'gift');
  expect(onChannel).toEqual(onSocket);
  expect(onChannel).toMatchObject({ streamId, seq: 1, giftTxId: sent.body.giftTxId, fromUserId: 'ev-sender' });

  // The end reaches the channel too, after the last gift.
  const ended = await api.request('POST', `/v1/streams/${streamId}/end`, {
    token: await api.token({ sub: 'ev-creator', ...ADULT }),
  });
  expect(ended.status).toBe(200);
  await until(() => received.flatMap(unpack).some((message) => message.type === 'streamEnded'), 'streamEnded');
  joined.socket.close();
  subscription.unsubscribe();
  await until(() => stack.eventApi.subscribers(channelPath as string) === 0, 'the unsubscribe');
  await channel.close();
});

test('unknown, ended and foreign channels are refused; the live one is not', async () => {
  const token = await api.token({ sub: 'ev-refused', ...ADULT });
  const { streamId: endedId, token: creatorToken } = await goLive(api, 'ev-ended-creator');
  expect((await api.request('POST', `/v1/streams/${endedId}/end`, { token: creatorToken })).status).toBe(200);
  const refusedPaths = [
    roomChannel('st_NOSUCHSTREAM0000000000000'),
    roomChannel(endedId),
    '/rooms/*',
    '/default/anything',
    '/rooms/st-5fX/extra',
  ];
  for (const path of refusedPaths) {
    const channel = await events.connect(path as string, { authMode: 'lambda', authToken: token });
    const subscription = channel.subscribe({ next: () => undefined, error: () => undefined });
    await expect((subscription as unknown as { ready: Promise<unknown> }).ready).rejects.toThrow();
    await channel.close();
  }
});

test("a client's publish is refused, over the socket and over HTTP, and reaches no subscriber", async () => {
  const { streamId } = await goLive(api, 'ev-pub-creator');
  const path = roomChannel(streamId) as string;
  const token = await api.token({ sub: 'ev-publisher', ...ADULT });
  const received: any[] = [];
  const channel = await events.connect(path, { authMode: 'lambda', authToken: token });
  const subscription = channel.subscribe({ next: (data: any) => received.push(data.event), error: () => undefined });
  await (subscription as unknown as { ready: Promise<unknown> }).ready;
  await expect(channel.publish({ type: 'gift', seq: 999 })).rejects.toThrow(/Unauthorized/);

  expect((await clientHttpPublish({ authorization: token })).status).toBe(401);
  expect((await clientHttpPublish({ 'x-api-key': 'guessed' })).status).toBe(401);
  expect(received).toEqual([]);
  subscription.unsubscribe();
  await channel.close();
});

test('an expired token is refused at connect', async () => {
  // Another realtime connection than the shared one: the provider keeps one socket per client.
  const expired = await signLocalToken(
    join(dataDir, 'issuer', 'key.json'),
    LOCAL_ISSUER,
    { sub: 'ev-late', ...ADULT },
    {
      now: new Date(Date.now() - 3 * 3600_000),
      lifetimeSeconds: 3600,
    },
  );
  const header = Buffer.from(
    JSON.stringify({ Authorization: expired, host: new URL(stack.eventApi.httpUrl).host }),
  ).toString('base64url');
  const socket = new WebSocket(stack.eventApi.realtimeUrl, ['aws-appsync-event-ws', `header-${header}`], {
    ca: stack.eventApi.certificate,
  });
  const messages: any[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data))));
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  expect(socket.protocol).toBe('aws-appsync-event-ws');
  socket.send(JSON.stringify({ type: 'connection_init' }));
  await new Promise((resolve) => socket.once('close', resolve));
  expect(messages).toEqual([
    { type: 'connection_error', errors: [expect.objectContaining({ errorType: 'UnauthorizedException' })] },
  ]);
});
