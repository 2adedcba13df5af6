import { closeBalancedBooks, seedCoins } from '../../support/ledger';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { ItemKey } from '../../../shared/adapters/dynamo/keys';
import { keys } from '../../../shared/adapters/dynamo/keys';
import { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import type { Item } from '../../../shared/ports/ledger-store';
import { newId } from '../../../shared/adapters/ids';
import { PermanentTransferError } from '../../../shared/adapters/stripe-connect';
import { DEFAULT_ECONOMY, payoutCents, type Economy } from '../../../shared/domain/economy';
import {
  AgeRestrictedError,
  BelowMinimumPayoutError,
  DomainError,
  InvariantViolation,
  WalletLockedError,
} from '../../../shared/domain/errors';
import { ageOn, assertAdult, assertMaySpend, type Caller } from '../../../shared/domain/identity';
import { logger } from '../../../shared/logger';
import { SenderWallets, sendGift, type SendGiftDeps } from '../../../shared/usecases/gifts';
import { processPayout, requestPayout, utcDay } from '../../../shared/usecases/payouts';
import { createRecharge, expirePendingRecharges, readRecharge } from '../../../shared/usecases/recharge';
import { createStream } from '../../../shared/usecases/streams';
import { handleStripeEvent } from '../../../shared/usecases/stripe-webhook';
import { setBudget, setLock } from '../../../shared/usecases/wallet-settings';
import { spentThisMonth } from '../../../shared/usecases/wallet';
import {
  adultCaller,
  FakeConnect,
  freshPayoutLedger,
  linkEnabledAccount,
  RecordingQueue,
  seedDiamonds,
  TEST_CREATOR_SHARDS,
} from './payout-fixtures';
import { adult, entriesOf, events, FakePayments, freshLedger, webhookDeps } from './recharge-fixtures';

/*
 * Money rules that mutation testing showed no test pinned (issue #19, section 5, and the
 * livemode rule of section 4). Each test sits at the rule's edge, so changing one comparison,
 * bound or condition in the product makes it fail.
 */

let store: DynamoLedgerStore;
let client: DynamoDBClient;
let tableName: string;
let sequence = 0;

beforeAll(async () => {
  logger.setLogLevel('SILENT');
  ({ store, client, tableName } = await freshPayoutLedger());
});
afterAll(() => closeBalancedBooks(client, tableName));

function uniqueUser(prefix: string): string {
  sequence += 1;
  return `${prefix}-${sequence}-${Date.now()}`;
}
const idem = () => ({ key: `mr-key-${(sequence += 1)}`, fingerprint: `fp-${sequence}` });

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DomainError) return error.code;
    throw error;
  }
  return 'ACCEPTED';
}

/**
 * The same table, but reads of chosen items come back as a stale replica might have them
 * (`rewrite` returns the item as read). Writes are untouched: what the write's own condition
 * refuses is then the only thing that can refuse.
 */
class StaleReads extends DynamoLedgerStore {
  constructor(
    dynamo: DynamoDBClient,
    table: string,
    private readonly rewrite: (key: ItemKey, item: Item | undefined) => Item | undefined,
  ) {
    super(dynamo, table);
  }

  override async getItem(key: ItemKey, options: { consistent?: boolean } = {}): Promise<Item | undefined> {
    return this.rewrite(key, await super.getItem(key, options));
  }
}
const sameKey = (a: ItemKey, b: ItemKey) => a.pk === b.pk && a.sk === b.sk;

/** A creator with `diamonds` available, all on the main wallet item (shards folded by a first payout a day earlier). */
async function creatorWithFoldedDiamonds(diamonds: number, foldDay: Date): Promise<string> {
  const userId = uniqueUser('creator');
  await seedDiamonds(store, userId, diamonds + DEFAULT_ECONOMY.minPayoutDiamonds);
  await linkEnabledAccount(store, userId);
  await requestPayout(
    { store, queue: new RecordingQueue(), economy: DEFAULT_ECONOMY, now: () => foldDay, newId },
    adultCaller(userId),
    { diamonds: DEFAULT_ECONOMY.minPayoutDiamonds },
    idem(),
  );
  const balance = await store.readCreatorBalance(userId, { consistent: true });
  expect([balance.wallet.diamonds, balance.shardCredits - balance.shardDiamondsFolded]).toEqual([diamonds, 0]);
  return userId;
}

async function payoutDayTotal(
  userId: string,
  day: string,
): Promise<{ diamonds: number | undefined; expiresAt: number | undefined }> {
  const item = await store.getItem(keys.payoutDay(userId, day), { consistent: true });
  return { diamonds: item?.diamonds as number | undefined, expiresAt: item?.expiresAt as number | undefined };
}

// -------------------------------------------------------------------------------------------------
// 1. The payout minimum, for amounts the whole-cents rule lets through
// -------------------------------------------------------------------------------------------------

describe('the 2,000-diamond payout minimum', () => {
  it('refuses 1,998 (a whole 999 cents) and accepts exactly 2,000 (1,000 cents)', () => {
    expect(() => payoutCents(DEFAULT_ECONOMY, 1_998)).toThrow(BelowMinimumPayoutError);
    expect(() => payoutCents(DEFAULT_ECONOMY, 1_998)).toThrow(/at least 2000 diamonds/);
    expect(payoutCents(DEFAULT_ECONOMY, 2_000)).toBe(1_000);
    expect(payoutCents(DEFAULT_ECONOMY, 2_002)).toBe(1_001);
  });

  it('refuses one diamond under the minimum when every amount is whole cents (1 cent a diamond)', () => {
    const centPerDiamond: Economy = { ...DEFAULT_ECONOMY, payoutCentsPerDiamondBps: 10_000 };
    expect(() => payoutCents(centPerDiamond, 1_999)).toThrow(/at least 2000 diamonds/);
    expect(payoutCents(centPerDiamond, 2_000)).toBe(2_000);
  });

  it('through requestPayout: 1,998 is BELOW_MINIMUM_PAYOUT and moves nothing; 2,000 is accepted for 10.00 USD', async () => {
    const userId = uniqueUser('creator');
    await seedDiamonds(store, userId, 5_000);
    await linkEnabledAccount(store, userId);
    const queue = new RecordingQueue();
    const deps = { store, queue, economy: DEFAULT_ECONOMY, now: () => new Date(), newId };

    await expect(requestPayout(deps, adultCaller(userId), { diamonds: 1_998 }, idem())).rejects.toThrow(
      BelowMinimumPayoutError,
    );
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({ diamonds: 5_000, pendingDiamonds: 0 });
    expect(queue.sent).toEqual([]);

    const accepted = await requestPayout(deps, adultCaller(userId), { diamonds: 2_000 }, idem());
    expect(accepted.status).toBe(202);
    expect(accepted.body).toMatchObject({
      status: 'requested',
      diamonds: 2_000,
      amount: { amount: 1_000, currency: 'USD' },
    });
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({
      diamonds: 3_000,
      pendingDiamonds: 2_000,
    });
    expect(queue.sent).toEqual([accepted.body.payoutId]);
  });
});

// -------------------------------------------------------------------------------------------------
// 2. The daily payout cap
// -------------------------------------------------------------------------------------------------

describe('the daily payout cap (200,000 diamonds a UTC day)', () => {
  it('lets exactly two of three concurrent 80,000 payouts through with 300,000 available; the day counts 160,000', async () => {
    const day = new Date('2026-05-04T10:00:00.000Z');
    const userId = await creatorWithFoldedDiamonds(300_000, new Date('2026-05-03T10:00:00.000Z'));
    const deps = { store, queue: new RecordingQueue(), economy: DEFAULT_ECONOMY, now: () => day, newId };
    const codes = await Promise.all(
      [1, 2, 3].map(() => codeOf(requestPayout(deps, adultCaller(userId), { diamonds: 80_000 }, idem()))),
    );
    expect(codes.sort()).toEqual(['ACCEPTED', 'ACCEPTED', 'PAYOUT_LIMIT_EXCEEDED']);
    expect((await payoutDayTotal(userId, '2026-05-04')).diamonds).toBe(160_000);
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({
      diamonds: 140_000,
      pendingDiamonds: 162_000,
    });
    expect(deps.queue.sent).toHaveLength(2);
  });

  it('refuses in the write itself when the read of the day counter is stale', async () => {
    const day = new Date('2026-05-05T10:00:00.000Z');
    const userId = await creatorWithFoldedDiamonds(300_000, new Date('2026-05-04T10:00:00.000Z'));
    const deps = { store, queue: new RecordingQueue(), economy: DEFAULT_ECONOMY, now: () => day, newId };
    await requestPayout(deps, adultCaller(userId), { diamonds: 150_000 }, idem());
    // A replica that has not seen today's payouts yet: only the counter's condition can refuse.
    const dayKey = keys.payoutDay(userId, '2026-05-05');
    const stale = new StaleReads(client, tableName, (key, item) => (sameKey(key, dayKey) ? undefined : item));
    const staleDeps = { ...deps, store: stale };
    expect(await codeOf(requestPayout(staleDeps, adultCaller(userId), { diamonds: 52_000 }, idem()))).toBe(
      'PAYOUT_LIMIT_EXCEEDED',
    );
    // At the bound exactly (150,000 + 50,000 = 200,000) the same write goes through.
    expect(await codeOf(requestPayout(staleDeps, adultCaller(userId), { diamonds: 50_000 }, idem()))).toBe('ACCEPTED');
    expect((await payoutDayTotal(userId, '2026-05-05')).diamonds).toBe(200_000);
    expect(await codeOf(requestPayout(staleDeps, adultCaller(userId), { diamonds: 2_000 }, idem()))).toBe(
      'PAYOUT_LIMIT_EXCEEDED',
    );
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({
      diamonds: 100_000,
      pendingDiamonds: 202_000,
    });
  });

  it('accepts exactly 200,000, refuses 2,000 more until the UTC day ends, and allows again on the next day', async () => {
    const morning = new Date('2026-05-06T08:00:00.000Z');
    const lastMillisecond = new Date('2026-05-06T23:59:59.999Z');
    const nextDay = new Date('2026-05-07T00:00:00.000Z');
    const userId = await creatorWithFoldedDiamonds(210_000, new Date('2026-05-05T08:00:00.000Z'));
    const at = (now: Date) => ({ store, queue: new RecordingQueue(), economy: DEFAULT_ECONOMY, now: () => now, newId });

    expect(await codeOf(requestPayout(at(morning), adultCaller(userId), { diamonds: 200_000 }, idem()))).toBe(
      'ACCEPTED',
    );
    expect(await codeOf(requestPayout(at(morning), adultCaller(userId), { diamonds: 2_000 }, idem()))).toBe(
      'PAYOUT_LIMIT_EXCEEDED',
    );
    expect(await codeOf(requestPayout(at(lastMillisecond), adultCaller(userId), { diamonds: 2_000 }, idem()))).toBe(
      'PAYOUT_LIMIT_EXCEEDED',
    );
    expect(await codeOf(requestPayout(at(nextDay), adultCaller(userId), { diamonds: 2_000 }, idem()))).toBe('ACCEPTED');

    expect(utcDay(lastMillisecond)).toBe('2026-05-06');
    expect((await payoutDayTotal(userId, '2026-05-06')).diamonds).toBe(200_000);
    expect((await payoutDayTotal(userId, '2026-05-07')).diamonds).toBe(2_000);
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({
      diamonds: 8_000,
      pendingDiamonds: 204_000,
    });
  });

  it("gives the day counter a TTL three days after its day's end, never inside the day it counts", async () => {
    const userId = await creatorWithFoldedDiamonds(10_000, new Date('2026-05-08T12:00:00.000Z'));
    await requestPayout(
      {
        store,
        queue: new RecordingQueue(),
        economy: DEFAULT_ECONOMY,
        now: () => new Date('2026-05-09T23:30:00.000Z'),
        newId,
      },
      adultCaller(userId),
      { diamonds: 2_000 },
      idem(),
    );
    const dayEndSeconds = Date.parse('2026-05-10T00:00:00.000Z') / 1000;
    const { expiresAt } = await payoutDayTotal(userId, '2026-05-09');
    expect(expiresAt).toBe(dayEndSeconds + 3 * 24 * 60 * 60);
    // The fold payout's counter a day earlier expires a day earlier: each day has its own.
    expect((await payoutDayTotal(userId, '2026-05-08')).expiresAt).toBe(
      dayEndSeconds - 24 * 60 * 60 + 3 * 24 * 60 * 60,
    );
  });
});

// -------------------------------------------------------------------------------------------------
// 3. The unlocked-wallet condition on gift and payout debits
// -------------------------------------------------------------------------------------------------

describe('the unlocked-wallet condition on debits, after a lock and an unlock', () => {
  const giftDeps = (ledger: DynamoLedgerStore): SendGiftDeps => ({
    store: ledger,
    publisher: { publish: async () => undefined },
    now: () => new Date(),
    newId,
    economy: DEFAULT_ECONOMY,
  });

  async function liveStream(): Promise<{ creatorId: string; streamId: string }> {
    const creatorId = uniqueUser('streamer');
    const stream = await createStream(
      { store, now: () => new Date(), newId, creatorShards: TEST_CREATOR_SHARDS },
      adultCaller(creatorId),
      { title: 'money rules' },
    );
    return { creatorId, streamId: stream.streamId };
  }

  it('refuses a gift while locked and lets it through once unlocked', async () => {
    const { streamId } = await liveStream();
    const sender = uniqueUser('fan');
    await seedCoins(store, sender, 100);
    const gift = () =>
      sendGift(giftDeps(store), adult(sender), {
        streamId,
        giftId: 'heart',
        quantity: 2,
        idempotencyKey: `g-${(sequence += 1)}`,
      });

    await setLock({ store, now: () => new Date() }, adult(sender), true);
    expect(await codeOf(gift())).toBe('WALLET_LOCKED');
    expect((await store.readWallet(sender, { consistent: true })).coins).toBe(100);

    await setLock({ store, now: () => new Date() }, adult(sender), false);
    const sent = await gift();
    expect(sent).toMatchObject({ coinsSpent: 10, wallet: { coins: 90 }, replayed: false });
  });

  it('refuses a gift in the write itself when the read saw the wallet unlocked', async () => {
    const { streamId } = await liveStream();
    const sender = uniqueUser('fan');
    await seedCoins(store, sender, 100);
    await setLock({ store, now: () => new Date() }, adult(sender), true);
    const walletKey = keys.wallet(sender);
    const stale = new StaleReads(client, tableName, (key, item) =>
      item && sameKey(key, walletKey) ? { ...item, locked: false } : item,
    );
    await expect(
      sendGift(giftDeps(stale), adult(sender), {
        streamId,
        giftId: 'heart',
        quantity: 1,
        idempotencyKey: 'stale-lock',
      }),
    ).rejects.toThrow(WalletLockedError);
    expect((await store.readWallet(sender, { consistent: true })).coins).toBe(100);
    expect((await entriesOf(store, sender)).filter((entry) => entry.entryType === 'gift_sent')).toEqual([]);
  });

  it('a remembered wallet never spends what is not there: another instance, a lock and a race are each caught by the write', async () => {
    const { streamId } = await liveStream();
    const sender = uniqueUser('fan');
    await seedCoins(store, sender, 100);
    // Two warm instances of the gift function, each with its own memory of the sender's wallet.
    const instanceA = { ...giftDeps(store), senderWallets: new SenderWallets() };
    const instanceB = { ...giftDeps(store), senderWallets: new SenderWallets() };
    const gift = (deps: SendGiftDeps) =>
      sendGift(deps, adult(sender), { streamId, giftId: 'heart', quantity: 2, idempotencyKey: `w-${(sequence += 1)}` });

    expect((await gift(instanceA)).wallet.coins).toBe(90);
    expect((await gift(instanceB)).wallet.coins).toBe(80);
    // A remembers 90: its write is cancelled on the balance, and the gift goes through on a read.
    expect((await gift(instanceA)).wallet.coins).toBe(70);
    await setLock({ store, now: () => new Date() }, adult(sender), true);
    // A remembers an unlocked 70: the write's own condition refuses it.
    expect(await codeOf(gift(instanceA))).toBe('WALLET_LOCKED');
    await setLock({ store, now: () => new Date() }, adult(sender), false);
    // Ten at once through one instance's memory, for coins enough for seven.
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => gift(instanceB)));
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(7);
    const refusals = await Promise.all(
      results.flatMap((result) => (result.status === 'rejected' ? [codeOf(Promise.reject(result.reason))] : [])),
    );
    expect(refusals).toEqual(['INSUFFICIENT_COINS', 'INSUFFICIENT_COINS', 'INSUFFICIENT_COINS']);
    expect((await store.readWallet(sender, { consistent: true })).coins).toBe(0);
    const sent = (await entriesOf(store, sender)).filter((entry) => entry.entryType === 'gift_sent');
    expect(sent).toHaveLength(10);
    expect(sent.reduce((sum, entry) => sum - Number(entry.coins), 0)).toBe(100);
  });

  it('refuses a payout while locked and lets it through once unlocked', async () => {
    const userId = uniqueUser('creator');
    await seedDiamonds(store, userId, 4_000);
    await linkEnabledAccount(store, userId);
    const deps = { store, queue: new RecordingQueue(), economy: DEFAULT_ECONOMY, now: () => new Date(), newId };

    await setLock({ store, now: () => new Date() }, adultCaller(userId), true);
    expect(await codeOf(requestPayout(deps, adultCaller(userId), { diamonds: 2_000 }, idem()))).toBe('WALLET_LOCKED');
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({ diamonds: 4_000, pendingDiamonds: 0 });

    await setLock({ store, now: () => new Date() }, adultCaller(userId), false);
    expect(await codeOf(requestPayout(deps, adultCaller(userId), { diamonds: 2_000 }, idem()))).toBe('ACCEPTED');
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({
      diamonds: 2_000,
      pendingDiamonds: 2_000,
    });
  });

  it('refuses a payout in the write itself when the read saw the wallet unlocked', async () => {
    const userId = uniqueUser('creator');
    await seedDiamonds(store, userId, 4_000);
    await linkEnabledAccount(store, userId);
    await setLock({ store, now: () => new Date() }, adultCaller(userId), true);
    const walletKey = keys.wallet(userId);
    const stale = new StaleReads(client, tableName, (key, item) =>
      item && sameKey(key, walletKey) ? { ...item, locked: false } : item,
    );
    const queue = new RecordingQueue();
    await expect(
      requestPayout(
        { store: stale, queue, economy: DEFAULT_ECONOMY, now: () => new Date(), newId },
        adultCaller(userId),
        { diamonds: 2_000 },
        idem(),
      ),
    ).rejects.toThrow(WalletLockedError);
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({
      diamonds: 4_000,
      pendingDiamonds: 0,
      locked: true,
    });
    expect(queue.sent).toEqual([]);
  });
});

// -------------------------------------------------------------------------------------------------
// 4. The budget at exactly its limit
// -------------------------------------------------------------------------------------------------

describe('the monthly budget at its edge', () => {
  const NOW = new Date('2026-03-10T12:00:00.000Z');
  const rechargeDeps = (ledger: DynamoLedgerStore = store) => ({
    store: ledger,
    payments: new FakePayments(),
    now: () => NOW,
  });
  const buy = (caller: Caller, packageId: string, ledger?: DynamoLedgerStore) =>
    codeOf(createRecharge(rechargeDeps(ledger), caller, { packageId }, idem()));

  it('accepts a recharge that brings the month exactly to the limit, and refuses one cent more', async () => {
    const caller = adult(uniqueUser('buyer'));
    await setBudget({ store, now: () => NOW, newId }, caller, { amount: 1_198, currency: 'USD' });
    expect(await buy(caller, 'coins_500')).toBe('ACCEPTED');
    expect(await buy(caller, 'coins_500')).toBe('ACCEPTED');
    expect(await spentThisMonth(store, caller.userId, NOW, true)).toBe(1_198);
    expect(await buy(caller, 'coins_100')).toBe('BUDGET_EXCEEDED');

    const short = adult(uniqueUser('buyer'));
    await setBudget({ store, now: () => NOW, newId }, short, { amount: 1_197, currency: 'USD' });
    expect(await buy(short, 'coins_500')).toBe('ACCEPTED');
    expect(await buy(short, 'coins_500')).toBe('BUDGET_EXCEEDED');
    expect(await spentThisMonth(store, short.userId, NOW, true)).toBe(599);
  });

  it('accepts a package priced exactly at the whole budget; then nothing more', async () => {
    const caller = adult(uniqueUser('buyer'));
    await setBudget({ store, now: () => NOW, newId }, caller, { amount: 599, currency: 'USD' });
    expect(await buy(caller, 'coins_1000')).toBe('BUDGET_EXCEEDED');
    expect(await buy(caller, 'coins_500')).toBe('ACCEPTED');
    expect(await buy(caller, 'coins_100')).toBe('BUDGET_EXCEEDED');
    expect(await spentThisMonth(store, caller.userId, NOW, true)).toBe(599);
  });

  it('holds the edge in the write itself when the read of the month is stale', async () => {
    const caller = adult(uniqueUser('buyer'));
    await setBudget({ store, now: () => NOW, newId }, caller, { amount: 1_198, currency: 'USD' });
    expect(await buy(caller, 'coins_500')).toBe('ACCEPTED');
    // A read that missed the first recharge: only the month's condition can refuse.
    const monthKey = keys.budgetMonth(caller.userId, '2026-03');
    const stale = new StaleReads(client, tableName, (key, item) => (sameKey(key, monthKey) ? undefined : item));
    expect(await buy(caller, 'coins_1000', stale)).toBe('BUDGET_EXCEEDED');
    expect(await buy(caller, 'coins_500', stale)).toBe('ACCEPTED');
    expect(await buy(caller, 'coins_100', stale)).toBe('BUDGET_EXCEEDED');
    expect(await spentThisMonth(store, caller.userId, NOW, true)).toBe(1_198);
  });
});

// -------------------------------------------------------------------------------------------------
// 6. The pending recharge's 24-hour lifetime
// -------------------------------------------------------------------------------------------------

describe('the 24-hour lifetime of an unpaid recharge', () => {
  // Each test on its own table: the expiry sweep reads the whole pending index.
  const CREATED = new Date('2026-03-10T12:00:00.000Z');
  const after = (ms: number) => new Date(CREATED.getTime() + ms);
  const HOUR = 60 * 60 * 1000;
  const MINUTE = 60 * 1000;

  async function openRecharge(
    ledger: DynamoLedgerStore,
    payments: FakePayments,
    caller: Caller,
    packageId = 'coins_500',
  ) {
    const answer = await createRecharge({ store: ledger, payments, now: () => CREATED }, caller, { packageId }, idem());
    return { rechargeId: answer.body.rechargeId, paymentIntentId: answer.body.payment.paymentIntentId };
  }
  const expireAt = (ledger: DynamoLedgerStore, payments: FakePayments, now: Date) =>
    expirePendingRecharges({ store: ledger, payments, now: () => now });

  it('keeps a recharge 23h59m old, expires it at 24h01m and releases its price once', async () => {
    const { store: ledger, client: dynamo } = await freshLedger();
    try {
      const payments = new FakePayments();
      const caller = adult('lifetime-1');
      const { rechargeId, paymentIntentId } = await openRecharge(ledger, payments, caller);

      expect(await expireAt(ledger, payments, after(23 * HOUR + 59 * MINUTE))).toEqual({
        expired: 0,
        skipped: 0,
        refunded: 0,
      });
      expect(payments.cancelCalls).toEqual([]);
      expect((await readRecharge(ledger, rechargeId))?.status).toBe('pending');
      expect(await spentThisMonth(ledger, caller.userId, CREATED, true)).toBe(599);

      expect(await expireAt(ledger, payments, after(24 * HOUR + MINUTE))).toEqual({
        expired: 1,
        skipped: 0,
        refunded: 0,
      });
      expect(payments.cancelCalls).toEqual([paymentIntentId]);
      expect(await readRecharge(ledger, rechargeId)).toMatchObject({ status: 'failed', budgetHeld: false });
      expect(await spentThisMonth(ledger, caller.userId, CREATED, true)).toBe(0);

      // It left the index: a later run finds nothing, and Stripe's own canceled event releases nothing more.
      expect(await expireAt(ledger, payments, after(48 * HOUR))).toEqual({ expired: 0, skipped: 0, refunded: 0 });
      expect(await handleStripeEvent(webhookDeps(ledger), events.canceled(paymentIntentId))).toBe('ignored');
      expect(await spentThisMonth(ledger, caller.userId, CREATED, true)).toBe(0);
    } finally {
      dynamo.destroy();
    }
  });

  it('releases the budget once for payment_intent.canceled delivered twice, and alongside the expiry', async () => {
    const { store: ledger, client: dynamo } = await freshLedger();
    try {
      const payments = new FakePayments();
      const caller = adult('lifetime-2');
      await setBudget({ store: ledger, now: () => CREATED, newId }, caller, { amount: 1_198, currency: 'USD' });
      const first = await openRecharge(ledger, payments, caller);
      const second = await openRecharge(ledger, payments, caller);
      expect(await spentThisMonth(ledger, caller.userId, CREATED, true)).toBe(1_198);

      const canceled = events.canceled(first.paymentIntentId);
      expect(await handleStripeEvent(webhookDeps(ledger), canceled)).toBe('canceled');
      expect(await handleStripeEvent(webhookDeps(ledger), canceled)).toBe('ignored');
      expect(await handleStripeEvent(webhookDeps(ledger), events.canceled(first.paymentIntentId))).toBe('ignored');
      expect(await spentThisMonth(ledger, caller.userId, CREATED, true)).toBe(599);

      // The second: Stripe's canceled event (twice) racing the expiry sweep that cancels it too.
      const secondCanceled = events.canceled(second.paymentIntentId);
      const [sweep, ...outcomes] = await Promise.all([
        expireAt(ledger, payments, after(24 * HOUR + MINUTE)),
        handleStripeEvent(webhookDeps(ledger), secondCanceled),
        handleStripeEvent(webhookDeps(ledger), secondCanceled),
      ]);
      const releases = outcomes.filter((outcome) => outcome === 'canceled').length + sweep.expired;
      expect(releases).toBe(1);
      expect(await spentThisMonth(ledger, caller.userId, CREATED, true)).toBe(0);
      expect(await readRecharge(ledger, second.rechargeId)).toMatchObject({ status: 'failed', budgetHeld: false });
      // The whole budget is free again: two 5.99 recharges fill it exactly.
      expect(
        await codeOf(
          createRecharge({ store: ledger, payments, now: () => CREATED }, caller, { packageId: 'coins_500' }, idem()),
        ),
      ).toBe('ACCEPTED');
      expect(
        await codeOf(
          createRecharge({ store: ledger, payments, now: () => CREATED }, caller, { packageId: 'coins_500' }, idem()),
        ),
      ).toBe('ACCEPTED');
    } finally {
      dynamo.destroy();
    }
  });

  it('skips a payment still processing at expiry: it keeps counting toward the budget and is credited when it succeeds', async () => {
    const { store: ledger, client: dynamo } = await freshLedger();
    try {
      const payments = new FakePayments();
      const caller = adult('lifetime-3');
      await setBudget({ store: ledger, now: () => CREATED, newId }, caller, { amount: 1_000, currency: 'USD' });
      const { rechargeId, paymentIntentId } = await openRecharge(ledger, payments, caller);
      payments.cancelOutcomes.set(paymentIntentId, 'processing');

      expect(await expireAt(ledger, payments, after(24 * HOUR + MINUTE))).toEqual({
        expired: 0,
        skipped: 1,
        refunded: 0,
      });
      expect(payments.cancelCalls).toEqual([paymentIntentId]);
      expect((await readRecharge(ledger, rechargeId))?.status).toBe('pending');
      expect(await spentThisMonth(ledger, caller.userId, CREATED, true)).toBe(599);
      const later = { store: ledger, payments, now: () => after(25 * HOUR) };
      expect(await codeOf(createRecharge(later, caller, { packageId: 'coins_500' }, idem()))).toBe('BUDGET_EXCEEDED');

      expect(await handleStripeEvent(webhookDeps(ledger), events.succeeded(paymentIntentId))).toBe('credited');
      expect((await ledger.readWallet(caller.userId, { consistent: true })).coins).toBe(500);
      expect(await spentThisMonth(ledger, caller.userId, CREATED, true)).toBe(599);
      // Credited: the next sweep has nothing to do with it.
      expect(await expireAt(ledger, payments, after(26 * HOUR))).toEqual({ expired: 0, skipped: 0, refunded: 0 });
    } finally {
      dynamo.destroy();
    }
  });

  it('keeps a declined recharge counting until 24 hours, then cancels its PaymentIntent and releases it', async () => {
    const { store: ledger, client: dynamo } = await freshLedger();
    try {
      const payments = new FakePayments();
      const caller = adult('lifetime-4');
      const { rechargeId, paymentIntentId } = await openRecharge(ledger, payments, caller);
      expect(
        await handleStripeEvent(
          webhookDeps(ledger, () => after(HOUR)),
          events.failed(paymentIntentId),
        ),
      ).toBe('declined');
      expect(await readRecharge(ledger, rechargeId)).toMatchObject({ status: 'failed', budgetHeld: true });
      expect(await spentThisMonth(ledger, caller.userId, CREATED, true)).toBe(599);

      expect(await expireAt(ledger, payments, after(23 * HOUR + 59 * MINUTE))).toEqual({
        expired: 0,
        skipped: 0,
        refunded: 0,
      });
      expect(await spentThisMonth(ledger, caller.userId, CREATED, true)).toBe(599);

      expect(await expireAt(ledger, payments, after(24 * HOUR + MINUTE))).toEqual({
        expired: 1,
        skipped: 0,
        refunded: 0,
      });
      expect(payments.cancelCalls).toEqual([paymentIntentId]);
      expect(await readRecharge(ledger, rechargeId)).toMatchObject({ status: 'failed', budgetHeld: false });
      expect(await spentThisMonth(ledger, caller.userId, CREATED, true)).toBe(0);
      expect((await ledger.readWallet(caller.userId, { consistent: true })).coins).toBe(0);
    } finally {
      dynamo.destroy();
    }
  });
});

// -------------------------------------------------------------------------------------------------
// 7. Age on the birthday and the day before
// -------------------------------------------------------------------------------------------------

describe('age on the birthday itself and the day before it', () => {
  const TODAY = new Date('2026-03-10T00:00:00.000Z');
  const EVE = new Date('2026-03-09T23:59:59.999Z');
  const person = (birthdate: string, country = 'US', parentalConsent = false): Caller => ({
    userId: 'age',
    birthdate,
    country,
    parentalConsent,
  });

  it('counts a year from the first moment of the birthday (UTC), not before', () => {
    expect(ageOn('2008-03-10', TODAY)).toBe(18);
    expect(ageOn('2008-03-10', EVE)).toBe(17);
    expect(ageOn('2008-03-11', TODAY)).toBe(17);
    expect(ageOn('2008-02-10', TODAY)).toBe(18);
    expect(ageOn('2008-04-10', TODAY)).toBe(17);
  });

  it('is an adult on the 18th birthday, not the day before (US)', () => {
    expect(() => assertAdult(person('2008-03-10'), TODAY)).not.toThrow();
    expect(() => assertAdult(person('2008-03-10'), EVE)).toThrow(AgeRestrictedError);
    expect(() => assertAdult(person('2008-03-11'), TODAY)).toThrow(AgeRestrictedError);
    expect(() => assertMaySpend(person('2008-03-10'), TODAY)).not.toThrow();
    expect(() => assertMaySpend(person('2008-03-11'), TODAY)).toThrow(AgeRestrictedError);
  });

  it('is an adult in KR on the 19th birthday only', () => {
    expect(() => assertAdult(person('2007-03-10', 'KR'), TODAY)).not.toThrow();
    expect(() => assertAdult(person('2007-03-11', 'KR'), TODAY)).toThrow(AgeRestrictedError);
    expect(() => assertAdult(person('2008-03-10', 'KR'), TODAY)).toThrow(AgeRestrictedError);
    expect(() => assertMaySpend(person('2008-03-10', 'KR'), TODAY)).toThrow(AgeRestrictedError);
    expect(() => assertMaySpend(person('2008-03-10', 'KR', true), TODAY)).not.toThrow();
    expect(() => assertMaySpend(person('2007-03-10', 'KR'), TODAY)).not.toThrow();
  });

  it('may spend with consent from the 13th birthday, not the day before, and never without consent under 18', () => {
    expect(() => assertMaySpend(person('2013-03-10', 'US', true), TODAY)).not.toThrow();
    expect(() => assertMaySpend(person('2013-03-11', 'US', true), TODAY)).toThrow(AgeRestrictedError);
    expect(() => assertMaySpend(person('2013-03-10', 'US', true), EVE)).toThrow(AgeRestrictedError);
    expect(() => assertMaySpend(person('2013-03-10', 'US', false), TODAY)).toThrow(AgeRestrictedError);
    // Consent never makes a minor an adult for going live or payouts.
    expect(() => assertAdult(person('2013-03-10', 'US', true), TODAY)).toThrow(AgeRestrictedError);
  });
});

// -------------------------------------------------------------------------------------------------
// 8. settle() on a failure that is not "already settled"
// -------------------------------------------------------------------------------------------------

describe('settling a payout when the ledger does not hold it', () => {
  async function requestedPayout(diamonds: number): Promise<{ userId: string; payoutId: string }> {
    const userId = uniqueUser('creator');
    await seedDiamonds(store, userId, diamonds);
    await linkEnabledAccount(store, userId);
    const answer = await requestPayout(
      { store, queue: new RecordingQueue(), economy: DEFAULT_ECONOMY, now: () => new Date(), newId },
      adultCaller(userId),
      { diamonds },
      idem(),
    );
    return { userId, payoutId: answer.body.payoutId };
  }
  const setPending = (userId: string, pendingDiamonds: number) =>
    store.transactWrite([
      store.update('corrupt pending', keys.wallet(userId), {
        expression: 'SET pendingDiamonds = :p',
        values: { ':p': pendingDiamonds },
      }),
    ]);
  const workerDeps = (connect: FakeConnect) => ({
    store,
    connect,
    now: () => new Date(),
    newId,
    transferRetry: { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 },
  });

  it('throws the InvariantViolation when pending diamonds do not cover a paid payout, and marks nothing paid', async () => {
    const { userId, payoutId } = await requestedPayout(2_000);
    await setPending(userId, 1_999);
    const connect = new FakeConnect();
    await expect(processPayout(workerDeps(connect), payoutId)).rejects.toThrow(InvariantViolation);
    expect(await store.getItem(keys.payout(payoutId), { consistent: true })).toMatchObject({ status: 'processing' });
    expect((await entriesOf(store, userId)).map((entry) => entry.type)).not.toContain('payout_paid');
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({ diamonds: 0, pendingDiamonds: 1_999 });

    // Once the ledger is whole again, the next delivery settles it with the same transfer.
    await setPending(userId, 2_000);
    expect(await processPayout(workerDeps(connect), payoutId)).toBe('paid');
    expect(connect.transfersByKey.size).toBe(1);
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({ diamonds: 0, pendingDiamonds: 0 });
  });

  it('throws the InvariantViolation on a permanent refusal too, and gives nothing back', async () => {
    const { userId, payoutId } = await requestedPayout(2_000);
    await setPending(userId, 1_000);
    const connect = new FakeConnect();
    connect.transferErrors.push(new PermanentTransferError('account_closed', 'the account is closed'));
    await expect(processPayout(workerDeps(connect), payoutId)).rejects.toThrow(InvariantViolation);
    expect(await store.getItem(keys.payout(payoutId), { consistent: true })).toMatchObject({ status: 'processing' });
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({ diamonds: 0, pendingDiamonds: 1_000 });
    expect((await entriesOf(store, userId)).map((entry) => entry.type)).not.toContain('payout_reversed');

    await setPending(userId, 2_000);
    connect.transferErrors.push(new PermanentTransferError('account_closed', 'the account is closed'));
    expect(await processPayout(workerDeps(connect), payoutId)).toBe('failed');
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({ diamonds: 2_000, pendingDiamonds: 0 });
  });
});

// -------------------------------------------------------------------------------------------------
// 9. Events from the other Stripe mode
// -------------------------------------------------------------------------------------------------

describe('events whose livemode does not match the deployment', () => {
  it('a live payment_intent.succeeded on a test deployment credits nothing and leaves no marker', async () => {
    const caller = adult(uniqueUser('buyer'));
    const answer = await createRecharge(
      { store, payments: new FakePayments(), now: () => new Date() },
      caller,
      { packageId: 'coins_500' },
      idem(),
    );
    const { paymentIntentId } = answer.body.payment;
    const live = { ...events.succeeded(paymentIntentId), livemode: true };

    expect(await handleStripeEvent(webhookDeps(store), live)).toBe('livemode_mismatch');
    expect((await store.readWallet(caller.userId, { consistent: true })).coins).toBe(0);
    expect((await readRecharge(store, answer.body.rechargeId))?.status).toBe('pending');
    expect(await store.getItem(keys.stripeEvent(live.id), { consistent: true })).toBeUndefined();
    expect(await entriesOf(store, caller.userId)).toEqual([]);

    // The same event id in the deployment's own mode is still new.
    expect(await handleStripeEvent(webhookDeps(store), { ...live, livemode: false })).toBe('credited');
    expect((await store.readWallet(caller.userId, { consistent: true })).coins).toBe(500);
  });

  it('a live dispute takes nothing back; a test event on a live deployment changes nothing either', async () => {
    const caller = adult(uniqueUser('buyer'));
    const answer = await createRecharge(
      { store, payments: new FakePayments(), now: () => new Date() },
      caller,
      { packageId: 'coins_500' },
      idem(),
    );
    const { paymentIntentId } = answer.body.payment;
    expect(await handleStripeEvent(webhookDeps(store), events.succeeded(paymentIntentId))).toBe('credited');

    expect(
      await handleStripeEvent(webhookDeps(store), { ...events.dispute(paymentIntentId, 599), livemode: true }),
    ).toBe('livemode_mismatch');
    const liveDeployment = webhookDeps(store, () => new Date(), new FakePayments(), { livemode: true });
    expect(await handleStripeEvent(liveDeployment, events.dispute(paymentIntentId, 599))).toBe('livemode_mismatch');
    expect(await handleStripeEvent(liveDeployment, events.refunded(paymentIntentId, 599, 599))).toBe(
      'livemode_mismatch',
    );
    expect(await store.readWallet(caller.userId, { consistent: true })).toMatchObject({
      coins: 500,
      owedCoins: 0,
      locked: false,
    });
    expect((await readRecharge(store, answer.body.rechargeId))?.status).toBe('succeeded');
  });
});
