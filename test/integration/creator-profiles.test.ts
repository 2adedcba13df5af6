import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import type { LocalStack } from '../../infra/local/stack';
import type { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { profileKey } from '../../shared/adapters/dynamo/profile-items';
import { ADULT, goLive, ledgerFor, seedCoins } from '../support/ledger';
import { apiClient, type ApiClient, expectBooksBalance, startTestStack } from '../support/local-stack';

/*
 * A creator's public profile: what a viewer checks before gifting. Streams and the date of the
 * first come from going live; the gift total is folded by the broadcaster per window, not per gift.
 */

let stack: LocalStack;
let api: ApiClient;
let store: DynamoLedgerStore;
let dynamo: DynamoDBClient;

beforeAll(async () => {
  stack = await startTestStack();
  api = apiClient(stack.httpUrl);
  ({ dynamo, store } = ledgerFor(stack));
});
afterAll(async () => {
  await expectBooksBalance(stack);
  dynamo.destroy();
  await stack.stop();
});

const unique = (name: string) => `${name}-${randomBytes(4).toString('hex')}`;

async function waitUntil<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out; last value ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('creator profiles', () => {
  it('going live makes the profile; gifts add to its total once broadcast, in one write per window', async () => {
    const creatorId = unique('profiled');
    const viewer = await api.token({ sub: unique('viewer'), ...ADULT });
    const first = await goLive(api, creatorId, 'first');
    await api.request('POST', `/v1/streams/${first.streamId}/end`, { token: first.token });
    const live = await goLive(api, creatorId, 'second');

    const profile = await api.request('GET', `/v1/creators/${creatorId}`, { token: viewer });
    expect(profile.status).toBe(200);
    expect(profile.body).toEqual({
      creatorId,
      displayName: creatorId,
      streamingSince: expect.any(String),
      streams: 2,
      verified: false,
      giftCoinsReceived: 0,
    });

    const senderId = unique('sender');
    await seedCoins(store, senderId, 100);
    const sender = await api.token({ sub: senderId, ...ADULT });
    for (let gift = 0; gift < 3; gift += 1) {
      const sent = await api.request('POST', `/v1/streams/${live.streamId}/gifts`, {
        token: sender,
        body: { giftId: 'rose', quantity: 2 },
        headers: { 'idempotency-key': unique('gift') },
      });
      expect(sent.status).toBe(201);
    }
    const after = await waitUntil(
      () => api.request('GET', `/v1/creators/${creatorId}`, { token: viewer }),
      (answer) => answer.body.giftCoinsReceived === 6,
    );
    expect(after.body).toMatchObject({ streams: 2, streamingSince: profile.body.streamingSince });
    // The stream's own total and the profile's agree once broadcast.
    expect((await api.request('GET', `/v1/streams/${live.streamId}`, { token: viewer })).body.giftCoins).toBe(6);

    // The stream list shows the profile beside each live stream.
    const listed = await api.request('GET', '/v1/streams?limit=100', { token: viewer });
    const mine = listed.body.items.find((item: { streamId: string }) => item.streamId === live.streamId);
    expect(mine.creator).toMatchObject({ creatorId, streams: 2, giftCoinsReceived: 6, verified: false });
  });

  it('a creator names the profile; nobody else can, and a user who never went live has none', async () => {
    const creatorId = unique('named');
    const { token } = await goLive(api, creatorId);
    const named = await api.request('PUT', '/v1/creator/profile', { token, body: { displayName: '  Night Owl ' } });
    expect(named.body).toMatchObject({ creatorId, displayName: 'Night Owl' });

    const never = await api.token({ sub: unique('never-live'), ...ADULT });
    const refused = await api.request('PUT', '/v1/creator/profile', { token: never, body: { displayName: 'x' } });
    expect([refused.status, refused.body.error.code]).toEqual([404, 'NOT_FOUND']);
    const missing = await api.request('GET', `/v1/creators/${unique('nobody')}`, { token: never });
    expect([missing.status, missing.body.error.code]).toEqual([404, 'NOT_FOUND']);
    const tooLong = await api.request('PUT', '/v1/creator/profile', { token, body: { displayName: 'x'.repeat(51) } });
    expect([tooLong.status, tooLong.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
    // Nothing about verification can be set by the creator.
    expect((await store.getItem(profileKey(creatorId), { consistent: true }))?.verified).toBeUndefined();
  });

  it('only operators grant the verified badge, and each change is in the audit trail', async () => {
    const creatorId = unique('verified');
    await goLive(api, creatorId);
    const operatorToken = async (sub: string, groups?: string[]) => {
      const answer = await api.request('POST', '/dev/tokens', { body: { sub, ...ADULT, ...(groups && { groups }) } });
      return String(answer.body.token);
    };
    const operatorId = unique('operator');
    const operator = await operatorToken(operatorId, ['operators']);
    const someone = await operatorToken(unique('user'));
    const path = `/v1/operator/creators/${creatorId}/verified`;

    const refused = await api.request('PUT', path, { token: someone, body: { verified: true } });
    expect([refused.status, refused.body.error.code]).toEqual([403, 'FORBIDDEN']);
    expect((await api.request('GET', `/v1/creators/${creatorId}`, { token: someone })).body.verified).toBe(false);

    const granted = await api.request('PUT', path, { token: operator, body: { verified: true } });
    expect(granted.body).toMatchObject({ creatorId, verified: true });
    expect((await api.request('GET', `/v1/creators/${creatorId}`, { token: someone })).body.verified).toBe(true);
    const unknown = await api.request('PUT', `/v1/operator/creators/${unique('nobody')}/verified`, {
      token: operator,
      body: { verified: true },
    });
    expect(unknown.status).toBe(404);

    const trail = await api.request('GET', '/v1/operator/audit?limit=100', { token: operator });
    const mine = trail.body.items.filter((record: { target: string }) => record.target === `creator:${creatorId}`);
    expect(mine).toEqual([
      expect.objectContaining({
        operatorId,
        action: 'creator.verify',
        details: { verified: true },
        at: expect.any(String),
      }),
    ]);
  });
});
