import { closeBalancedBooks } from '../../support/ledger';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { keys } from '../../../shared/adapters/dynamo/keys';
import { newId } from '../../../shared/adapters/ids';
import type { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import { PermanentTransferError } from '../../../shared/adapters/stripe-connect';
import { DEFAULT_ECONOMY, type Economy } from '../../../shared/domain/economy';
import {
  AgeRestrictedError,
  BelowMinimumPayoutError,
  IdempotencyKeyReusedError,
  InsufficientDiamondsError,
  PayoutAccountMissingError,
  PayoutLimitExceededError,
  TransientDependencyError,
  WalletLockedError,
  NotFoundError,
} from '../../../shared/domain/errors';
import { logger } from '../../../shared/logger';
import {
  getPayout,
  listPayouts,
  PAYOUT_OPEN,
  processPayout,
  requestPayout,
  sweepPayouts,
  TRANSFER_LOOKUP_AFTER_MS,
  UnknownPayoutError,
  type ProcessPayoutDeps,
} from '../../../shared/usecases/payouts';
import {
  adultCaller,
  FakeConnect,
  freshPayoutLedger,
  linkEnabledAccount,
  RecordingQueue,
  seedDiamonds,
  setLocked,
  TEST_CREATOR_SHARDS,
} from './payout-fixtures';

const noDelay = { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 0 };

let store: DynamoLedgerStore;
let client: DynamoDBClient;
let tableName: string;
let userSequence = 0;

beforeAll(async () => {
  logger.setLogLevel('SILENT');
  ({ store, client, tableName } = await freshPayoutLedger());
});
afterAll(() => closeBalancedBooks(client, tableName));

function newCreator(): string {
  userSequence += 1;
  return `creator-${userSequence}-${Date.now()}`;
}

function requestDeps(queue = new RecordingQueue(), economy: Economy = DEFAULT_ECONOMY, now = () => new Date()) {
  return { store, queue, economy, now, newId };
}

function workerDeps(connect: FakeConnect, extra: Partial<ProcessPayoutDeps> = {}): ProcessPayoutDeps {
  return { store, connect, now: () => new Date(), newId, transferRetry: noDelay, ...extra };
}

let keySequence = 0;
const idem = (fingerprint = 'f') => ({ key: `key-${(keySequence += 1)}`, fingerprint });

async function readyCreator(diamonds: number): Promise<string> {
  const userId = newCreator();
  await seedDiamonds(store, userId, diamonds);
  await linkEnabledAccount(store, userId);
  return userId;
}

async function entriesOf(userId: string) {
  const { entries } = await store.listEntries(userId, { limit: 100, creatorShards: TEST_CREATOR_SHARDS });
  return entries;
}

describe('requestPayout', () => {
  it('folds the shards, moves diamonds to pending in one step, writes the payout and its entry, then queues it', async () => {
    const userId = newCreator();
    await seedDiamonds(store, userId, 1_500);
    await seedDiamonds(store, userId, 1_500);
    await seedDiamonds(store, userId, 1_000);
    await linkEnabledAccount(store, userId, 'acct_fold');
    const queue = new RecordingQueue();

    const answer = await requestPayout(requestDeps(queue), adultCaller(userId), { diamonds: 2_000 }, idem());

    expect(answer.status).toBe(202);
    expect(answer.replayed).toBe(false);
    expect(answer.body).toEqual({
      payoutId: expect.stringMatching(/^po_/),
      status: 'requested',
      diamonds: 2_000,
      amount: { amount: 1_000, currency: 'USD' },
    });
    expect(queue.sent).toEqual([answer.body.payoutId]);
    const wallet = await store.readWallet(userId, { consistent: true });
    expect(wallet).toMatchObject({ diamonds: 2_000, pendingDiamonds: 2_000 });
    // Every shard was folded: the main item holds all that is left.
    const main = await store.getItem(keys.wallet(userId), { consistent: true });
    expect(main?.diamonds).toBe(2_000);
    const payout = await store.getItem(keys.payout(answer.body.payoutId), { consistent: true });
    expect(payout).toMatchObject({
      status: 'requested',
      userId,
      accountId: 'acct_fold',
      diamonds: 2_000,
      statusPk: PAYOUT_OPEN,
      amount: { amount: 1_000, currency: 'USD' },
    });
    const requested = (await entriesOf(userId)).filter((entry) => entry.type === 'payout_requested');
    expect(requested).toEqual([
      expect.objectContaining({
        diamonds: -2_000,
        pendingDiamonds: 2_000,
        coins: 0,
        ref: { payoutId: answer.body.payoutId },
      }),
    ]);
  });

  it('replays the same key without a second debit or message, and refuses the key with another body', async () => {
    const userId = await readyCreator(10_000);
    const queue = new RecordingQueue();
    const key = idem('body-a');
    const first = await requestPayout(requestDeps(queue), adultCaller(userId), { diamonds: 4_000 }, key);
    const again = await requestPayout(requestDeps(queue), adultCaller(userId), { diamonds: 4_000 }, key);
    expect(again).toEqual({ ...first, replayed: true });
    expect(queue.sent).toHaveLength(1);
    expect((await store.readWallet(userId, { consistent: true })).diamonds).toBe(6_000);
    await expect(
      requestPayout(
        requestDeps(queue),
        adultCaller(userId),
        { diamonds: 2_000 },
        { key: key.key, fingerprint: 'body-b' },
      ),
    ).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
  });

  it('does the work once for the same key sent twice at the same moment', async () => {
    const userId = await readyCreator(10_000);
    const queue = new RecordingQueue();
    const key = idem();
    const [a, b] = await Promise.all([
      requestPayout(requestDeps(queue), adultCaller(userId), { diamonds: 2_000 }, key),
      requestPayout(requestDeps(queue), adultCaller(userId), { diamonds: 2_000 }, key),
    ]);
    expect(a.body.payoutId).toBe(b.body.payoutId);
    expect((await store.readWallet(userId, { consistent: true })).pendingDiamonds).toBe(2_000);
  });

  it('lets only one of two payouts racing for the same diamonds through', async () => {
    const userId = await readyCreator(3_000);
    const results = await Promise.allSettled([
      requestPayout(requestDeps(), adultCaller(userId), { diamonds: 2_000 }, idem()),
      requestPayout(requestDeps(), adultCaller(userId), { diamonds: 2_000 }, idem()),
    ]);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((result) => result.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(InsufficientDiamondsError);
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({
      diamonds: 1_000,
      pendingDiamonds: 2_000,
    });
  });

  it("checks in API.md's order: lock, age, account, minimum and cents, daily maximum, available diamonds", async () => {
    const userId = newCreator();
    await seedDiamonds(store, userId, 100);
    await setLocked(store, userId, true);
    const minor = { userId, birthdate: '2012-01-01', country: 'US', parentalConsent: true };
    const attempt = (caller = adultCaller(userId), diamonds = 2_000) =>
      requestPayout(requestDeps(), caller, { diamonds }, idem());

    await expect(attempt(minor, 1)).rejects.toBeInstanceOf(WalletLockedError);
    await setLocked(store, userId, false);
    await expect(attempt(minor, 1)).rejects.toBeInstanceOf(AgeRestrictedError);
    // KR: majority is 19, so an 18-year-old there is refused too.
    const eighteen = `${new Date().getUTCFullYear() - 18}-01-01`;
    await expect(
      attempt({ userId, birthdate: eighteen, country: 'KR', parentalConsent: false }, 1),
    ).rejects.toBeInstanceOf(AgeRestrictedError);
    await expect(attempt(adultCaller(userId), 1)).rejects.toBeInstanceOf(PayoutAccountMissingError);
    const accountId = await linkEnabledAccount(store, userId, undefined, false);
    await expect(attempt(adultCaller(userId), 1)).rejects.toBeInstanceOf(PayoutAccountMissingError);
    await linkEnabledAccount(store, userId, accountId, true);
    await expect(attempt(adultCaller(userId), 1_999)).rejects.toBeInstanceOf(BelowMinimumPayoutError);
    // 2,001 diamonds are 1,000.5 cents: not a whole number of cents.
    await expect(attempt(adultCaller(userId), 2_001)).rejects.toBeInstanceOf(BelowMinimumPayoutError);
    await expect(attempt(adultCaller(userId), 200_002)).rejects.toBeInstanceOf(PayoutLimitExceededError);
    await expect(attempt(adultCaller(userId), 2_000)).rejects.toBeInstanceOf(InsufficientDiamondsError);
    // Nothing moved, and nothing was stored for the refusals.
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({ diamonds: 100, pendingDiamonds: 0 });
  });

  it('keeps a creator within the daily maximum across payouts, and a refusal is not stored', async () => {
    const userId = await readyCreator(20_000);
    const economy = { ...DEFAULT_ECONOMY, maxPayoutDiamondsPerDay: 5_000 };
    await requestPayout(requestDeps(undefined, economy), adultCaller(userId), { diamonds: 4_000 }, idem());
    const key = idem();
    await expect(
      requestPayout(requestDeps(undefined, economy), adultCaller(userId), { diamonds: 2_000 }, key),
    ).rejects.toBeInstanceOf(PayoutLimitExceededError);
    // The next UTC day has its own allowance, and the same key may now succeed.
    const tomorrow = () => new Date(Date.now() + 24 * 60 * 60 * 1000);
    const later = await requestPayout(
      requestDeps(undefined, economy, tomorrow),
      adultCaller(userId),
      { diamonds: 2_000 },
      key,
    );
    expect(later.status).toBe(202);
  });

  it('answers 202 when SendMessage fails after the commit; the sweeper sends it later', async () => {
    const userId = await readyCreator(2_000);
    const queue = new RecordingQueue();
    queue.failNext = 1;
    const answer = await requestPayout(requestDeps(queue), adultCaller(userId), { diamonds: 2_000 }, idem());
    expect(answer.status).toBe(202);
    expect(queue.sent).toEqual([]);
    const sweep = (secondsLater: number) =>
      sweepPayouts({
        store,
        queue,
        now: () => new Date(Date.now() + secondsLater * 1000),
        requestedAfterSeconds: 10,
        processingAfterSeconds: 30,
      });
    await sweep(11);
    expect(queue.sent).toContain(answer.body.payoutId);
  });
});

describe('processPayout', () => {
  async function requested(diamonds = 2_000, userId?: string): Promise<{ userId: string; payoutId: string }> {
    const creator = userId ?? (await readyCreator(diamonds));
    const answer = await requestPayout(requestDeps(), adultCaller(creator), { diamonds }, idem());
    return { userId: creator, payoutId: answer.body.payoutId };
  }

  it('pays: one transfer keyed by the payout id, then paid, pending out and a payout_paid entry in one step', async () => {
    const { userId, payoutId } = await requested(4_000);
    const connect = new FakeConnect();
    const notified: string[] = [];
    const outcome = await processPayout(
      workerDeps(connect, { notify: async (user) => void notified.push(user) }),
      payoutId,
    );

    expect(outcome).toBe('paid');
    expect(connect.createTransferCalls).toEqual([
      { payoutId, userId, accountId: expect.stringMatching(/^acct_/), amount: { amount: 2_000, currency: 'USD' } },
    ]);
    const payout = await store.getItem(keys.payout(payoutId), { consistent: true });
    expect(payout).toMatchObject({ status: 'paid', transferId: connect.transfersByKey.get(payoutId)?.transferId });
    expect(payout?.statusPk).toBeUndefined();
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({ diamonds: 0, pendingDiamonds: 0 });
    const paid = (await entriesOf(userId)).filter((entry) => entry.type === 'payout_paid');
    expect(paid).toEqual([
      expect.objectContaining({
        diamonds: 0,
        pendingDiamonds: -4_000,
        ref: { payoutId, transferId: expect.any(String) },
      }),
    ]);
    expect(notified).toEqual([userId]);
    expect(await processPayout(workerDeps(connect), payoutId)).toBe('duplicate');
    expect(connect.createTransferCalls).toHaveLength(1);
  });

  it('settles once when the same message is handled three times at once', async () => {
    const { userId, payoutId } = await requested();
    const connect = new FakeConnect();
    const outcomes = await Promise.all([1, 2, 3].map(() => processPayout(workerDeps(connect), payoutId)));
    expect(outcomes.filter((outcome) => outcome === 'paid')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome === 'duplicate')).toHaveLength(2);
    expect(connect.transfersByKey.size).toBe(1);
    expect((await entriesOf(userId)).filter((entry) => entry.type === 'payout_paid')).toHaveLength(1);
    expect((await store.readWallet(userId, { consistent: true })).pendingDiamonds).toBe(0);
  });

  it('pays once when the worker dies after the transfer and before the ledger update', async () => {
    const { userId, payoutId } = await requested();
    const connect = new FakeConnect();
    const crashing = Object.assign(Object.create(connect) as FakeConnect, {
      createTransfer: async (request: Parameters<FakeConnect['createTransfer']>[0]) => {
        await connect.createTransfer(request);
        throw new Error('worker killed after the transfer');
      },
    });
    await expect(processPayout(workerDeps(crashing), payoutId)).rejects.toThrow('worker killed');
    expect((await store.getItem(keys.payout(payoutId), { consistent: true }))?.status).toBe('processing');

    expect(await processPayout(workerDeps(connect), payoutId)).toBe('paid');
    expect(connect.createTransferCalls).toHaveLength(2);
    expect(connect.transfersByKey.size).toBe(1);
    expect((await entriesOf(userId)).filter((entry) => entry.type === 'payout_paid')).toHaveLength(1);
  });

  it('retries short Stripe blips within the delivery (500, then 429, then success)', async () => {
    const { payoutId } = await requested();
    const connect = new FakeConnect();
    connect.transferErrors.push(new TransientDependencyError('500'), new TransientDependencyError('429'));
    expect(await processPayout(workerDeps(connect), payoutId)).toBe('paid');
    expect(connect.createTransferCalls).toHaveLength(3);
  });

  it('leaves the payout processing and the balances alone on a lasting transient error', async () => {
    const { userId, payoutId } = await requested();
    const connect = new FakeConnect();
    connect.transferErrors.push(...[1, 2, 3].map(() => new TransientDependencyError('Stripe is down')));
    await expect(processPayout(workerDeps(connect), payoutId)).rejects.toBeInstanceOf(TransientDependencyError);
    expect((await store.getItem(keys.payout(payoutId), { consistent: true }))?.status).toBe('processing');
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({ diamonds: 0, pendingDiamonds: 2_000 });
    expect(await processPayout(workerDeps(connect), payoutId)).toBe('paid');
  });

  it('fails and reverses on a permanent refusal: the diamonds come back, with a payout_reversed entry', async () => {
    const userId = await readyCreator(10_000);
    const economy = { ...DEFAULT_ECONOMY, maxPayoutDiamondsPerDay: 6_000 };
    const answer = await requestPayout(
      requestDeps(undefined, economy),
      adultCaller(userId),
      { diamonds: 6_000 },
      idem(),
    );
    const payoutId = answer.body.payoutId;
    const connect = new FakeConnect();
    const notified: string[] = [];
    connect.transferErrors.push(new PermanentTransferError('account_invalid', 'The destination account is invalid'));
    expect(
      await processPayout(workerDeps(connect, { notify: async (user) => void notified.push(user) }), payoutId),
    ).toBe('failed');

    expect(await getPayout({ store }, adultCaller(userId), payoutId)).toMatchObject({
      status: 'failed',
      failureCode: 'account_invalid',
    });
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({
      diamonds: 10_000,
      pendingDiamonds: 0,
    });
    const reversed = (await entriesOf(userId)).filter((entry) => entry.type === 'payout_reversed');
    expect(reversed).toEqual([expect.objectContaining({ diamonds: 6_000, pendingDiamonds: -6_000 })]);
    expect(notified).toEqual([userId]);
    // The day's allowance came back with the diamonds.
    const again = await requestPayout(
      requestDeps(undefined, economy),
      adultCaller(userId),
      { diamonds: 6_000 },
      idem(),
    );
    expect(again.status).toBe(202);
    expect(await processPayout(workerDeps(connect), payoutId)).toBe('duplicate');
  });

  it('looks for an existing transfer first once Stripe may have forgotten the key', async () => {
    const { payoutId } = await requested();
    const connect = new FakeConnect();
    await connect.createTransfer({
      payoutId,
      userId: 'x',
      accountId: 'acct_x',
      amount: { amount: 1_000, currency: 'USD' },
    });
    const dayLater = () => new Date(Date.now() + TRANSFER_LOOKUP_AFTER_MS + 1_000);
    expect(await processPayout(workerDeps(connect, { now: dayLater }), payoutId)).toBe('paid');
    expect(connect.lookups).toEqual([payoutId]);
    expect(connect.createTransferCalls).toHaveLength(1);

    const fresh = await requested();
    expect(await processPayout(workerDeps(connect, { now: dayLater }), fresh.payoutId)).toBe('paid');
    expect(connect.lookups).toEqual([payoutId, fresh.payoutId]);
    expect(connect.createTransferCalls).toHaveLength(2);
  });

  it('refuses a message that names no payout (a poison message)', async () => {
    await expect(processPayout(workerDeps(new FakeConnect()), 'po_missing')).rejects.toBeInstanceOf(UnknownPayoutError);
  });
});

describe('sweepPayouts', () => {
  it('re-sends requested payouts after the threshold and stuck processing ones after theirs, with a growing wait', async () => {
    const userId = await readyCreator(4_000);
    const first = await requestPayout(requestDeps(), adultCaller(userId), { diamonds: 2_000 }, idem());
    const second = await requestPayout(requestDeps(), adultCaller(userId), { diamonds: 2_000 }, idem());
    // The second one's delivery dies after marking it processing.
    const connect = new FakeConnect();
    connect.transferErrors.push(...[1, 2, 3].map(() => new TransientDependencyError('down')));
    await expect(processPayout(workerDeps(connect), second.body.payoutId)).rejects.toBeInstanceOf(
      TransientDependencyError,
    );

    const queue = new RecordingQueue();
    const base = Date.now();
    const sweepAt = (seconds: number) =>
      sweepPayouts({
        store,
        queue,
        now: () => new Date(base + seconds * 1000),
        requestedAfterSeconds: 10,
        processingAfterSeconds: 30,
      });
    const mine = () => queue.sent.filter((id) => id === first.body.payoutId || id === second.body.payoutId);

    await sweepAt(5);
    expect(mine()).toEqual([]);
    await sweepAt(11);
    expect(mine()).toEqual([first.body.payoutId]);
    // Sent again only after twice the threshold since that resend.
    await sweepAt(25);
    expect(mine()).toEqual([first.body.payoutId]);
    // Oldest touch first: the stuck one (30 s) and the first one again (11 + 2 x 10 s).
    await sweepAt(32);
    expect(mine()).toEqual([first.body.payoutId, second.body.payoutId, first.body.payoutId]);
    await sweepAt(33);
    expect(mine()).toHaveLength(3);

    // Settled payouts leave the index and are never swept.
    await processPayout(workerDeps(new FakeConnect()), first.body.payoutId);
    await processPayout(workerDeps(new FakeConnect()), second.body.payoutId);
    const before = mine().length;
    await sweepAt(3_600);
    expect(mine()).toHaveLength(before);
  });
});

describe('reads', () => {
  it('lists the caller’s payouts newest first with a cursor, and hides other people’s', async () => {
    const userId = await readyCreator(8_000);
    const ids: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      const at = new Date(Date.UTC(2026, 0, 1, 0, 0, index));
      const answer = await requestPayout(
        requestDeps(undefined, DEFAULT_ECONOMY, () => at),
        adultCaller(userId),
        { diamonds: 2_000 },
        idem(),
      );
      ids.push(answer.body.payoutId);
    }
    const first = await listPayouts({ store }, adultCaller(userId), { limit: 2 });
    expect(first.items.map((item) => item.payoutId)).toEqual([ids[2], ids[1]]);
    expect(first.items[0]).toEqual({
      payoutId: ids[2],
      status: 'requested',
      diamonds: 2_000,
      amount: { amount: 1_000, currency: 'USD' },
      createdAt: '2026-01-01T00:00:02.000Z',
      updatedAt: '2026-01-01T00:00:02.000Z',
    });
    expect(first.nextCursor).not.toBeNull();
    const second = await listPayouts({ store }, adultCaller(userId), { limit: 2, cursor: first.nextCursor ?? '' });
    expect(second.items.map((item) => item.payoutId)).toEqual([ids[0]]);
    expect(second.nextCursor).toBeNull();

    expect((await listPayouts({ store }, adultCaller('someone-else'), { limit: 10 })).items).toEqual([]);
    await expect(getPayout({ store }, adultCaller('someone-else'), ids[0] ?? '')).rejects.toBeInstanceOf(NotFoundError);
    await expect(getPayout({ store }, adultCaller(userId), 'po_unknown')).rejects.toBeInstanceOf(NotFoundError);
  });
});
