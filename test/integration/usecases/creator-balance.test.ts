import { closeBalancedBooks } from '../../support/ledger';
import { TransactionCanceledException, TransactWriteItemsCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import { keys } from '../../../shared/adapters/dynamo/keys';
import { DynamoLedgerStore, type DynamoSend } from '../../../shared/adapters/dynamo/ledger-store';
import { newId } from '../../../shared/adapters/ids';
import { PermanentTransferError } from '../../../shared/adapters/stripe-connect';
import { DEFAULT_ECONOMY } from '../../../shared/domain/economy';
import { logger } from '../../../shared/logger';
import { processPayout, requestPayout } from '../../../shared/usecases/payouts';
import { getWallet } from '../../../shared/usecases/wallet';
import {
  adultCaller,
  FakeConnect,
  freshPayoutLedger,
  linkEnabledAccount,
  RecordingQueue,
  seedDiamonds,
} from './payout-fixtures';

/**
 * A creator's balance is the wallet item plus its shards. Payouts fold the shards while gifts land
 * on them and while readers read; every read and every payout check must see one state.
 */

const SHARDS = 8;
let store: DynamoLedgerStore;
let client: DynamoDBClient;
let tableName: string;

beforeAll(async () => {
  logger.setLogLevel('SILENT');
  ({ store, client, tableName } = await freshPayoutLedger());
});
afterAll(() => closeBalancedBooks(client, tableName));

/** A creator whose 10,000 diamonds are spread over every shard, with a payout account. */
async function creatorWith(diamondsPerSeed: number, seeds: number): Promise<string> {
  const userId = `creator-${randomBytes(4).toString('hex')}`;
  for (let seed = 0; seed < seeds; seed += 1) await seedDiamonds(store, userId, diamondsPerSeed, SHARDS);
  await linkEnabledAccount(store, userId);
  return userId;
}

const idem = () => ({ key: randomBytes(6).toString('hex'), fingerprint: 'f' });
const requestDeps = (target: DynamoLedgerStore = store) => ({
  store: target,
  queue: new RecordingQueue(),
  economy: DEFAULT_ECONOMY,
  now: () => new Date(),
  newId,
});

/** Reads the balance over and over while `work` runs; returns every reading. */
async function readWhile(
  userId: string,
  work: Promise<unknown>,
): Promise<Array<{ diamonds: number; pendingDiamonds: number }>> {
  let done = false;
  const readings: Array<{ diamonds: number; pendingDiamonds: number }> = [];
  const readers = Array.from({ length: 4 }, async () => {
    while (!done) {
      const wallet = await getWallet({ store, now: () => new Date() }, adultCaller(userId));
      readings.push({ diamonds: wallet.diamonds, pendingDiamonds: wallet.pendingDiamonds });
    }
  });
  try {
    await work;
  } finally {
    done = true;
    await Promise.all(readers);
  }
  return readings;
}

it('reads one state while two payouts fold the shards: available + pending is always the whole balance', async () => {
  const userId = await creatorWith(500, 20);
  const payouts = Promise.all([
    requestPayout(requestDeps(), adultCaller(userId), { diamonds: 4_000 }, idem()),
    requestPayout(requestDeps(), adultCaller(userId), { diamonds: 6_000 }, idem()),
  ]);
  const readings = await readWhile(userId, payouts);
  expect(readings.length).toBeGreaterThan(0);
  for (const reading of readings) expect(reading.diamonds + reading.pendingDiamonds).toBe(10_000);
  // Both payouts fit the balance, so neither was refused on a split read.
  expect((await payouts).map((answer) => answer.status)).toEqual([202, 202]);
  const wallet = await store.readWallet(userId, { consistent: true });
  expect(wallet).toMatchObject({ diamonds: 0, pendingDiamonds: 10_000 });
});

it('keeps reads exact while gifts keep landing on the shards and a payout folds them', async () => {
  const userId = await creatorWith(1_000, 4);
  const gifts = (async () => {
    for (let gift = 0; gift < 30; gift += 1) await seedDiamonds(store, userId, 100, SHARDS);
  })();
  const payout = requestPayout(requestDeps(), adultCaller(userId), { diamonds: 4_000 }, idem());
  const readings = await readWhile(userId, Promise.all([gifts, payout]));
  expect(readings.length).toBeGreaterThan(0);
  // Every reading is 4,000 plus some number of the 100-diamond gifts, never less.
  for (const reading of readings) {
    const total = reading.diamonds + reading.pendingDiamonds;
    expect(total).toBeGreaterThanOrEqual(4_000);
    expect(total).toBeLessThanOrEqual(7_000);
    expect((total - 4_000) % 100).toBe(0);
  }
  expect(await store.readWallet(userId, { consistent: true })).toMatchObject({
    diamonds: 3_000,
    pendingDiamonds: 4_000,
  });
});

it('settles and reverses payouts with the balance still exact, and never writes a shard', async () => {
  const userId = await creatorWith(2_500, 4);
  const shardsBefore = await store.batchGet(
    Array.from({ length: SHARDS }, (_, shard) => keys.walletShard(userId, shard)),
    { consistent: true },
  );
  const paid = await requestPayout(requestDeps(), adultCaller(userId), { diamonds: 4_000 }, idem());
  const refused = await requestPayout(requestDeps(), adultCaller(userId), { diamonds: 6_000 }, idem());
  const connect = new FakeConnect();
  await processPayout({ store, connect, now: () => new Date(), newId }, paid.body.payoutId);
  connect.transferErrors.push(new PermanentTransferError('account_closed', 'the account is closed'));
  await processPayout(
    { store, connect, now: () => new Date(), newId, transferRetry: { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 } },
    refused.body.payoutId,
  );
  expect(await store.readWallet(userId, { consistent: true })).toMatchObject({ diamonds: 6_000, pendingDiamonds: 0 });
  const shardsAfter = await store.batchGet(
    Array.from({ length: SHARDS }, (_, shard) => keys.walletShard(userId, shard)),
    { consistent: true },
  );
  expect(shardsAfter.map((item) => item.diamonds).sort()).toEqual(shardsBefore.map((item) => item.diamonds).sort());
});

/** A DynamoDB client whose first `conflicts` transactions are cancelled with TransactionConflict, as AWS does when they overlap. */
function conflicting(inner: DynamoSend, conflicts: number): DynamoSend & { cancelled: number } {
  const wrapper = {
    cancelled: 0,
    send: (async (command: unknown) => {
      if (command instanceof TransactWriteItemsCommand && wrapper.cancelled < conflicts) {
        wrapper.cancelled += 1;
        const reasons = (command.input.TransactItems ?? []).map(() => ({ Code: 'TransactionConflict' }));
        throw new TransactionCanceledException({
          message: 'Transaction cancelled',
          $metadata: {},
          CancellationReasons: reasons,
        });
      }
      return inner.send(command as never);
    }) as DynamoSend['send'],
  };
  return wrapper;
}

it('requests a payout through transaction conflicts on AWS (injected), with the balance exact after', async () => {
  const userId = await creatorWith(1_000, 10);
  const busy = conflicting(client, 2);
  const busyStore = new DynamoLedgerStore(busy, tableName, { maxAttempts: 5, baseDelayMs: 1, maxDelayMs: 5 });
  const answer = await requestPayout(requestDeps(busyStore), adultCaller(userId), { diamonds: 10_000 }, idem());
  expect(answer.status).toBe(202);
  expect(busy.cancelled).toBe(2);
  expect(await busyStore.readWallet(userId, { consistent: true })).toMatchObject({
    diamonds: 0,
    pendingDiamonds: 10_000,
  });
});
