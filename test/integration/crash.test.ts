import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { z } from 'zod';
import { freePort } from '../../infra/local/ports';
import { reconcileLedger } from '../../shared/ops/reconcile';
import { apiClient, type ApiClient } from '../support/local-stack';

/*
 * Crash safety: the whole `npm start` process group (node + the DynamoDB Local JVM)
 * is killed with SIGKILL while gifts, recharges and a payout are in flight, restarted on the same
 * data folder, and every request is retried with its idempotency key. Afterwards every balance is
 * exact, the payout is paid exactly once, and the books balance.
 *
 * CRASH_ROUNDS=10 npx jest test/integration/crash.test.ts repeats the kill/restart round (default 1).
 */

const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 1);
const ADULT = { birthdate: '1990-01-01', country: 'US' };
/** JVM start + tsx compile on a busy 2-core machine. */
const STARTUP_TIMEOUT_MS = 45_000;
/** docs/API.md: a payout interrupted by a crash is paid within 60 s of the restart. */
const PAYOUT_SETTLE_TIMEOUT_MS = 60_000;
const POLL_MS = 200;
const SENDERS = 3;
const GIFTS_PER_SENDER_PER_ROUND = 6;
const GIFT_QUANTITY = 5;
/** Each sender's first funding, and each recharge fired mid-flight: coins_500 (500 coins). */
const FUND_PACKAGE = 'coins_500';
const FUND_COINS = 500;
const MIDFLIGHT_PACKAGE = 'coins_100';
const MIDFLIGHT_COINS = 100;
/** The patron gives the creator enough diamonds for every round's payout (1 coin = 1 diamond). */
const PAYOUT_DIAMONDS = 2_000;
const LION_COINS = 1_000;

// Runs in ~35 s alone, ~60 s beside the fuzz suite on 2 cores; the ceiling leaves room for a slow CI machine.
jest.setTimeout(150_000 + (ROUNDS - 1) * 60_000);

const stackFile = z.object({ dynamoEndpoint: z.string(), ledgerTable: z.string(), httpUrl: z.string() });
const stripeKeys = z.object({ secretKey: z.string() });

const dataDir = mkdtempSync(join(tmpdir(), 'crash-it-'));
let child: ChildProcess | undefined;
let childStderr = '';

interface Running {
  pid: number;
  api: ApiClient;
  paymentsUrl: string;
}

async function startStack(): Promise<Running> {
  const [httpPort, wsPort, paymentsPort] = [await freePort(), await freePort(), await freePort()];
  childStderr = '';
  const started = spawn(process.execPath, [require.resolve('tsx/cli'), 'infra/local/main.ts'], {
    cwd: join(__dirname, '..', '..'),
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      LOCAL_HTTP_PORT: String(httpPort),
      LOCAL_WS_PORT: String(wsPort),
      LOCAL_PAYMENTS_PORT: String(paymentsPort),
      LOCAL_DATA_DIR: dataDir,
      LOG_LEVEL: 'ERROR',
      // The sweeper re-sends a stuck payout sooner than its defaults (10 s / 30 s), so the test stays short.
      PAYOUT_SWEEP_REQUESTED_AFTER_SECONDS: '2',
      PAYOUT_SWEEP_PROCESSING_AFTER_SECONDS: '5',
    },
  });
  started.stderr?.on('data', (data: Buffer) => {
    childStderr = (childStderr + String(data)).slice(-4000);
  });
  child = started;
  if (started.pid === undefined) throw new Error('npm start did not spawn');
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    if (started.exitCode !== null) throw new Error(`the stack exited with ${started.exitCode}: ${childStderr}`);
    const healthy = await fetch(`${httpUrl}/health`).then(
      (response) => response.status === 200,
      () => false,
    );
    if (healthy) break;
    if (Date.now() > deadline)
      throw new Error(`the stack was not healthy within ${STARTUP_TIMEOUT_MS} ms: ${childStderr}`);
    await sleep(POLL_MS);
  }
  return { pid: started.pid, api: apiClient(httpUrl), paymentsUrl: `http://127.0.0.1:${paymentsPort}` };
}

/**
 * Live (non-zombie) processes whose process group is `pgid`, read from /proc (no dependency on
 * procps being installed): /proc/<pid>/stat is "pid (comm) state ppid pgrp ...".
 */
function groupMembers(pgid: number): Array<{ pid: number; command: string }> {
  const members: Array<{ pid: number; command: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    const close = stat.lastIndexOf(')');
    const command = stat.slice(stat.indexOf('(') + 1, close);
    const [state, , pgrp] = stat.slice(close + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') members.push({ pid: Number(entry), command });
  }
  return members;
}

async function killGroup(pid: number): Promise<void> {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
  const deadline = Date.now() + 10_000;
  while (groupMembers(pid).length > 0) {
    if (Date.now() > deadline)
      throw new Error(`processes of group ${pid} survived SIGKILL: ${JSON.stringify(groupMembers(pid))}`);
    await sleep(50);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(
  what: string,
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value).slice(0, 1000)}`);
    await sleep(POLL_MS);
  }
}

/** A request the test fires before the crash and retries after it, with the same idempotency key. */
interface Planned {
  kind: 'gift' | 'recharge' | 'payout';
  token: string;
  method: string;
  path: string;
  body: unknown;
  key: string;
  expectedStatus: number;
  /** The answer before the crash, when one came back. */
  before?: { status: number; body: any };
}

function fire(api: ApiClient, request: Planned) {
  return api.request(request.method, request.path, {
    token: request.token,
    body: request.body,
    headers: { 'idempotency-key': request.key },
  });
}

async function fund(api: ApiClient, token: string, packageId: string, key: string): Promise<void> {
  const created = await api.request('POST', '/v1/recharges', {
    token,
    body: { packageId },
    headers: { 'idempotency-key': key },
  });
  expect(created.status).toBe(201);
  expect((await api.request('POST', `/dev/payments/${created.body.payment.paymentIntentId}/succeed`)).status).toBe(200);
  await until(
    'credited',
    () => api.request('GET', `/v1/recharges/${created.body.rechargeId}`, { token }),
    (answer) => answer.body?.status === 'succeeded',
    10_000,
  );
}

async function allTransactions(api: ApiClient, token: string): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const page: { status: number; body: { items: any[]; nextCursor: string | null } } = await api.request(
      'GET',
      `/v1/wallet/transactions?limit=100${cursor ? `&cursor=${cursor}` : ''}`,
      { token },
    );
    expect(page.status).toBe(200);
    items.push(...page.body.items);
    cursor = page.body.nextCursor;
  } while (cursor);
  return items;
}

afterAll(async () => {
  if (child?.pid !== undefined) await killGroup(child.pid).catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('crash safety: SIGKILL of the whole local stack mid-flight', () => {
  it(`keeps every balance exact and settles every payout once across ${ROUNDS} kill/restart round(s)`, async () => {
    let running = await startStack();
    let { api } = running;
    const run = randomBytes(3).toString('hex');
    const creatorId = `crash-creator-${run}`;
    const patronId = `crash-patron-${run}`;
    const senderIds = Array.from({ length: SENDERS }, (_, index) => `crash-sender-${index}-${run}`);
    const creatorToken = await api.token({ sub: creatorId, ...ADULT });
    const patronToken = await api.token({ sub: patronId, ...ADULT });
    const senderTokens = await Promise.all(senderIds.map((sub) => api.token({ sub, ...ADULT })));

    // Setup: the creator is live with a linked payout account; senders are funded; the patron
    // gives the creator one payout's worth of diamonds per round.
    const stream = await api.request('POST', '/v1/streams', { token: creatorToken, body: { title: 'crash' } });
    expect(stream.status).toBe(201);
    const streamId = String(stream.body.streamId);
    const account = await api.request('POST', '/v1/creator/payout-account', { token: creatorToken });
    expect(account.status).toBe(201);
    expect((await fetch(String(account.body.onboardingUrl))).status).toBe(200);
    await until(
      'payouts enabled',
      () => api.request('GET', '/v1/creator/payout-account', { token: creatorToken }),
      (answer) => answer.body?.payoutsEnabled === true,
      10_000,
    );
    await Promise.all(senderTokens.map((token, index) => fund(api, token, FUND_PACKAGE, `fund-${index}`)));
    const patronCoins = ROUNDS * PAYOUT_DIAMONDS;
    for (let bought = 0; bought < patronCoins; bought += 5_000)
      await fund(api, patronToken, 'coins_5000', `patron-fund-${bought}`);
    const patronFunded = Math.ceil(patronCoins / 5_000) * 5_000;
    for (let index = 0; index < patronCoins / LION_COINS; index += 1) {
      const given = await api.request('POST', `/v1/streams/${streamId}/gifts`, {
        token: patronToken,
        body: { giftId: 'lion', quantity: 1 },
        headers: { 'idempotency-key': `patron-${index}` },
      });
      expect(given.status).toBe(201);
    }

    const all: Planned[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      const planned: Planned[] = [];
      senderTokens.forEach((token, sender) => {
        for (let index = 0; index < GIFTS_PER_SENDER_PER_ROUND; index += 1) {
          planned.push({
            kind: 'gift',
            token,
            method: 'POST',
            path: `/v1/streams/${streamId}/gifts`,
            body: { giftId: 'rose', quantity: GIFT_QUANTITY },
            key: `g-${round}-${sender}-${index}`,
            expectedStatus: 201,
          });
        }
        planned.push({
          kind: 'recharge',
          token,
          method: 'POST',
          path: '/v1/recharges',
          body: { packageId: MIDFLIGHT_PACKAGE },
          key: `r-${round}-${sender}`,
          expectedStatus: 201,
        });
      });
      planned.push({
        kind: 'payout',
        token: creatorToken,
        method: 'POST',
        path: '/v1/payouts',
        body: { diamonds: PAYOUT_DIAMONDS },
        key: `p-${round}`,
        expectedStatus: 202,
      });
      // Interleave kinds so the kill lands with all three in flight.
      planned.sort(() => Math.random() - 0.5);
      all.push(...planned);

      // Fire everything at once and kill the group once a few answers are back (so some commits
      // happened and others are mid-way).
      let answered = 0;
      const killAfter = Math.max(1, Math.floor(planned.length / 4));
      const firing = Promise.all(
        planned.map(async (request) => {
          try {
            const answer = await fire(api, request);
            request.before = answer;
          } catch {
            /* the connection died with the stack */
          }
          answered += 1;
        }),
      );
      await until(
        'some answers',
        async () => answered,
        (count) => count >= killAfter,
        30_000,
      );
      const pid = running.pid;
      // The DynamoDB Local JVM is in the group (npm start keeps every child there), so the kill reaches it.
      expect(groupMembers(pid).some((member) => /java/.test(member.command))).toBe(true);
      await killGroup(pid);
      expect(groupMembers(pid).filter((member) => /java/.test(member.command))).toEqual([]);
      await firing;

      running = await startStack();
      api = running.api;
      // Every request again with its key: each now succeeds, or answers what it answered before.
      const retried = await Promise.all(planned.map((request) => fire(api, request)));
      retried.forEach((answer, index) => {
        const request = planned[index]!;
        expect({ key: request.key, status: answer.status, body: answer.body }).toMatchObject({
          key: request.key,
          status: request.expectedStatus,
        });
        if (request.before?.status === request.expectedStatus) {
          const id = request.kind === 'gift' ? 'giftTxId' : request.kind === 'recharge' ? 'rechargeId' : 'payoutId';
          expect(answer.body[id]).toBe(request.before.body[id]);
        }
        (request as Planned & { after: any }).after = answer.body;
      });
      // The recharges fired mid-flight are paid now (a second /succeed of one already paid is a replay).
      for (const request of planned.filter((candidate) => candidate.kind === 'recharge')) {
        const paymentIntentId = String((request as Planned & { after: any }).after.payment.paymentIntentId);
        expect((await api.request('POST', `/dev/payments/${paymentIntentId}/succeed`)).status).toBe(200);
      }
    }

    // Exact balances. Each sender: funded − Σ distinct gifts.
    const giftsOf = (token: string) => all.filter((request) => request.kind === 'gift' && request.token === token);
    for (const token of senderTokens) {
      const distinct = new Set(giftsOf(token).map((request) => (request as Planned & { after: any }).after.giftTxId));
      expect(distinct.size).toBe(ROUNDS * GIFTS_PER_SENDER_PER_ROUND);
      const expectedCoins = FUND_COINS + ROUNDS * MIDFLIGHT_COINS - distinct.size * GIFT_QUANTITY;
      await until(
        'recharge credits',
        () => api.request('GET', '/v1/wallet', { token }),
        (answer) => answer.body?.coins === expectedCoins,
        10_000,
      );
      const entries = await allTransactions(api, token);
      expect(entries.filter((entry) => entry.type === 'gift_sent')).toHaveLength(distinct.size);
      expect(entries.filter((entry) => entry.type === 'recharge')).toHaveLength(1 + ROUNDS);
    }
    expect((await api.request('GET', '/v1/wallet', { token: patronToken })).body.coins).toBe(
      patronFunded - patronCoins,
    );

    // The creator: Σ gifts − payouts, every payout paid exactly once.
    const payoutIds = all
      .filter((request) => request.kind === 'payout')
      .map((request) => String((request as Planned & { after: any }).after.payoutId));
    expect(new Set(payoutIds).size).toBe(ROUNDS);
    for (const payoutId of payoutIds) {
      await until(
        'payout paid',
        () => api.request('GET', `/v1/payouts/${payoutId}`, { token: creatorToken }),
        (answer) => answer.body?.status === 'paid',
        PAYOUT_SETTLE_TIMEOUT_MS,
      );
    }
    const giftDiamonds = patronCoins + SENDERS * ROUNDS * GIFTS_PER_SENDER_PER_ROUND * GIFT_QUANTITY;
    const creatorWallet = await api.request('GET', '/v1/wallet', { token: creatorToken });
    expect(creatorWallet.body).toMatchObject({ diamonds: giftDiamonds - ROUNDS * PAYOUT_DIAMONDS, pendingDiamonds: 0 });
    const creatorEntries = await allTransactions(api, creatorToken);
    expect(creatorEntries.filter((entry) => entry.type === 'payout_requested')).toHaveLength(ROUNDS);
    expect(creatorEntries.filter((entry) => entry.type === 'payout_paid')).toHaveLength(ROUNDS);
    expect(creatorEntries.filter((entry) => entry.type === 'payout_reversed')).toHaveLength(0);

    // Exactly one transfer per payout at the payments stand-in.
    const { secretKey } = stripeKeys.parse(JSON.parse(readFileSync(join(dataDir, 'stripe-keys.json'), 'utf8')));
    for (const payoutId of payoutIds) {
      const listed = await fetch(
        `${running.paymentsUrl}/v1/transfers?transfer_group=${encodeURIComponent(payoutId)}&limit=100`,
        { headers: { authorization: `Bearer ${secretKey}` } },
      );
      expect(listed.status).toBe(200);
      const transfers = z.object({ data: z.array(z.object({ amount: z.number() })) }).parse(await listed.json());
      expect(transfers.data).toEqual([expect.objectContaining({ amount: PAYOUT_DIAMONDS / 2 })]);
    }

    // The books balance (npm run reconcile's check, against the stack's own table).
    const { dynamoEndpoint, ledgerTable } = stackFile.parse(
      JSON.parse(readFileSync(join(dataDir, 'stack.json'), 'utf8')),
    );
    const client = new DynamoDBClient({
      endpoint: dynamoEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
    });
    try {
      const report = await reconcileLedger(client, ledgerTable);
      expect(report.discrepancies).toEqual([]);
      expect(report.ok).toBe(true);
    } finally {
      client.destroy();
    }
  });
});
