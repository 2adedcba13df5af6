import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import type { LocalStack } from '../../infra/local/stack';
import type { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { ADULT, goLive, ledgerFor, seedCoins } from '../support/ledger';
import { apiClient, type ApiClient, expectBooksBalance, startTestStack } from '../support/local-stack';

/*
 * Parental permission in the app: a teenager invites a guardian, the guardian approves, declines
 * or later revokes, and may set the teenager's budget. Recharges and gifts follow the app's
 * decision over the token's claim. Everything over real HTTP and DynamoDB Local.
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

/** 15 in the US on any date this suite may run (born 2011-06-01: 15 until mid-2027). */
const TEEN = { birthdate: '2011-06-01', country: 'US' };
/** 18 in the US but still a minor in Korea (majority 19). */
const KR_EIGHTEEN = { birthdate: '2008-01-01', country: 'KR' };

const unique = (name: string) => `${name}-${randomBytes(4).toString('hex')}`;
const key = () => `k-${randomBytes(6).toString('hex')}`;

async function recharge(token: string) {
  return api.request('POST', '/v1/recharges', {
    token,
    body: { packageId: 'coins_100' },
    headers: { 'idempotency-key': key() },
  });
}

async function invite(teenToken: string, guardianId: string) {
  return api.request('POST', '/v1/guardian-invites', { token: teenToken, body: { guardianId } });
}

async function decide(token: string, inviteId: string, decision: 'approve' | 'decline') {
  return api.request('POST', `/v1/guardian-invites/${inviteId}/${decision}`, { token });
}

async function family() {
  const teenId = unique('teen');
  const guardianId = unique('parent');
  const teen = await api.token({ sub: teenId, ...TEEN });
  const guardian = await api.token({ sub: guardianId, ...ADULT });
  return { teenId, guardianId, teen, guardian };
}

describe('a teenager asks a guardian, who approves in the app', () => {
  it('before approval: AGE_RESTRICTED; after: the recharge goes through, and the decision is on record', async () => {
    const { teenId, guardianId, teen, guardian } = await family();
    expect((await recharge(teen)).body.error.code).toBe('AGE_RESTRICTED');

    const created = await invite(teen, guardianId);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ teenId, guardianId, status: 'pending', decidedAt: null });
    // Asking again while it waits answers the same invite.
    expect((await invite(teen, guardianId)).body.inviteId).toBe(created.body.inviteId);

    const waiting = await api.request('GET', '/v1/guardian-invites', { token: guardian });
    expect(waiting.body.items.map((item: { inviteId: string }) => item.inviteId)).toEqual([created.body.inviteId]);

    const approved = await decide(guardian, created.body.inviteId, 'approve');
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'approved', decidedAt: expect.any(String) });
    expect((await api.request('GET', '/v1/guardian-invites', { token: guardian })).body.items).toEqual([]);

    expect((await api.request('GET', '/v1/consent', { token: teen })).body).toEqual({
      consented: true,
      appConsent: 'granted',
      guardianId,
      decidedAt: approved.body.decidedAt,
    });
    expect((await recharge(teen)).status).toBe(201);

    // The audit trail: who decided what, and when.
    const records = await store.query({
      keyCondition: 'pk = :pk AND begins_with(sk, :prefix)',
      values: { ':pk': `USER#${teenId}`, ':prefix': 'CONSENT#' },
      consistent: true,
    });
    expect(records.items).toEqual([
      expect.objectContaining({
        action: 'granted',
        guardianId,
        inviteId: created.body.inviteId,
        at: approved.body.decidedAt,
      }),
    ]);
    // A decided invite cannot be decided again.
    expect((await decide(guardian, created.body.inviteId, 'decline')).body.error.code).toBe('CONFLICT');
  });

  it('a decline leaves the teenager without consent, and is recorded', async () => {
    const { teenId, guardianId, teen, guardian } = await family();
    const created = await invite(teen, guardianId);
    const declined = await decide(guardian, created.body.inviteId, 'decline');
    expect(declined.body).toMatchObject({ status: 'declined' });
    expect((await api.request('GET', '/v1/consent', { token: teen })).body).toMatchObject({
      consented: false,
      appConsent: 'none',
    });
    expect((await recharge(teen)).body.error.code).toBe('AGE_RESTRICTED');
    const records = await store.query({
      keyCondition: 'pk = :pk AND begins_with(sk, :prefix)',
      values: { ':pk': `USER#${teenId}`, ':prefix': 'CONSENT#' },
      consistent: true,
    });
    expect(records.items.map((item) => item.action)).toEqual(['declined']);
  });
});

describe('what is refused, and changes nothing', () => {
  it('a guardian under majority (an 18-year-old in Korea) cannot approve', async () => {
    const { teen } = await family();
    const youngId = unique('young-guardian');
    const young = await api.token({ sub: youngId, ...KR_EIGHTEEN });
    const created = await invite(teen, youngId);
    const refused = await decide(young, created.body.inviteId, 'approve');
    expect([refused.status, refused.body.error.code]).toEqual([403, 'AGE_RESTRICTED']);
    expect((await api.request('GET', '/v1/consent', { token: teen })).body.consented).toBe(false);
  });

  it('the teenager cannot approve their own invite, nor invite themselves', async () => {
    const { teenId, guardianId, teen } = await family();
    const created = await invite(teen, guardianId);
    const own = await decide(teen, created.body.inviteId, 'approve');
    expect([own.status, own.body.error.code]).toEqual([403, 'FORBIDDEN']);
    const self = await invite(teen, teenId);
    expect([self.status, self.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect((await api.request('GET', '/v1/consent', { token: teen })).body.consented).toBe(false);
  });

  it('an adult who was not invited cannot approve someone else’s invite (404: it does not leak)', async () => {
    const { guardianId, teen } = await family();
    const created = await invite(teen, guardianId);
    const stranger = await api.token({ sub: unique('stranger'), ...ADULT });
    const refused = await decide(stranger, created.body.inviteId, 'approve');
    expect([refused.status, refused.body.error.code]).toEqual([404, 'NOT_FOUND']);
    // Still waiting for the right guardian.
    const waiting = await api.request('GET', '/v1/guardian-invites', {
      token: await api.token({ sub: guardianId, ...ADULT }),
    });
    expect(waiting.body.items).toHaveLength(1);
  });

  it('an adult, or a child under 13, cannot invite a guardian', async () => {
    const adult = await api.token({ sub: unique('adult'), ...ADULT });
    expect((await invite(adult, unique('someone'))).body.error.code).toBe('AGE_RESTRICTED');
    const child = await api.token({ sub: unique('child'), birthdate: '2018-01-01', country: 'US' });
    expect((await invite(child, unique('someone'))).body.error.code).toBe('AGE_RESTRICTED');
  });
});

describe('revocation, the token’s claim, and the budget a guardian sets', () => {
  it('a revocation in the app overrides a consent claim in the token; a claim alone still works', async () => {
    const { teenId, guardianId, guardian } = await family();
    // The identity provider asserts consent: that keeps working while the app holds no decision.
    const claimed = await api.token({ sub: teenId, ...TEEN, parentalConsent: true });
    expect((await recharge(claimed)).status).toBe(201);

    const created = await invite(await api.token({ sub: teenId, ...TEEN }), guardianId);
    await decide(guardian, created.body.inviteId, 'approve');
    const revoked = await api.request('POST', `/v1/wards/${teenId}/consent/revoke`, { token: guardian });
    expect(revoked.body).toMatchObject({ teenId, appConsent: 'revoked' });

    expect((await recharge(claimed)).body.error.code).toBe('AGE_RESTRICTED');
    const creator = await goLive(api, unique('creator'));
    await seedCoins(store, teenId, 50);
    const gift = await api.request('POST', `/v1/streams/${creator.streamId}/gifts`, {
      token: claimed,
      body: { giftId: 'rose', quantity: 1 },
      headers: { 'idempotency-key': key() },
    });
    expect(gift.body.error.code).toBe('AGE_RESTRICTED');
    expect((await api.request('GET', '/v1/wallet', { token: claimed })).body.coins).toBe(50);
    expect((await api.request('GET', '/v1/consent', { token: claimed })).body).toMatchObject({
      consented: false,
      appConsent: 'revoked',
    });
  });

  it('only the guardian of record revokes or sets the budget; others get 404', async () => {
    const { teenId, guardianId, teen, guardian } = await family();
    await decide(guardian, (await invite(teen, guardianId)).body.inviteId, 'approve');
    const other = await api.token({ sub: unique('other-adult'), ...ADULT });
    expect((await api.request('POST', `/v1/wards/${teenId}/consent/revoke`, { token: other })).status).toBe(404);
    const budget = { monthlyLimit: { amount: 1000, currency: 'USD' } };
    expect((await api.request('PUT', `/v1/wards/${teenId}/budget`, { token: other, body: budget })).status).toBe(404);
    expect((await api.request('GET', '/v1/consent', { token: teen })).body.consented).toBe(true);
  });

  it('the guardian sets the budget; the teenager may lower it but not raise or remove it', async () => {
    const { teenId, guardianId, teen, guardian } = await family();
    await decide(guardian, (await invite(teen, guardianId)).body.inviteId, 'approve');
    const wrongCurrency = await api.request('PUT', `/v1/wards/${teenId}/budget`, {
      token: guardian,
      body: { monthlyLimit: { amount: 1000, currency: 'EUR' } },
    });
    expect([wrongCurrency.status, wrongCurrency.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
    const set = await api.request('PUT', `/v1/wards/${teenId}/budget`, {
      token: guardian,
      body: { monthlyLimit: { amount: 1000, currency: 'USD' } },
    });
    expect(set.body).toEqual({ teenId, monthlyLimit: { amount: 1000, currency: 'USD' }, setBy: 'guardian' });

    const raise = await api.request('PUT', '/v1/wallet/budget', {
      token: teen,
      body: { monthlyLimit: { amount: 5000, currency: 'USD' } },
    });
    expect([raise.status, raise.body.error.code]).toEqual([403, 'BUDGET_SET_BY_GUARDIAN']);
    const remove = await api.request('PUT', '/v1/wallet/budget', { token: teen, body: { monthlyLimit: null } });
    expect([remove.status, remove.body.error.code]).toEqual([403, 'BUDGET_SET_BY_GUARDIAN']);
    expect((await api.request('GET', '/v1/wallet', { token: teen })).body.budget.monthlyLimit).toEqual({
      amount: 1000,
      currency: 'USD',
    });

    const lower = await api.request('PUT', '/v1/wallet/budget', {
      token: teen,
      body: { monthlyLimit: { amount: 500, currency: 'USD' } },
    });
    expect(lower.status).toBe(200);
    expect(lower.body.budget.monthlyLimit).toEqual({ amount: 500, currency: 'USD' });
    // Lowered once, still not raisable back.
    const back = await api.request('PUT', '/v1/wallet/budget', {
      token: teen,
      body: { monthlyLimit: { amount: 1000, currency: 'USD' } },
    });
    expect(back.body.error.code).toBe('BUDGET_SET_BY_GUARDIAN');
  });
});
