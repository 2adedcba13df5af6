import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import { ensureTable } from '../../../shared/adapters/dynamo/create-tables';
import { keys, shardFor } from '../../../shared/adapters/dynamo/keys';
import { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import { entryItem } from '../../../shared/adapters/dynamo/items';
import { LEDGER_TABLE } from '../../../shared/adapters/dynamo/schema';
import type { PayoutQueue } from '../../../shared/adapters/payout-queue';
import type {
  ConnectAccount,
  ConnectPayouts,
  TransferMade,
  TransferRequest,
} from '../../../shared/adapters/stripe-connect';
import type { Caller } from '../../../shared/domain/identity';

/**
 * Shared pieces of the payout tests: seeding a creator's diamonds the way a gift credits them,
 * a fake Connect port that keeps Stripe's idempotency promise, and a recording queue.
 */

/** A fresh ledger table in the run's DynamoDB Local: the use cases run against the real engine's conditions. */
export async function freshPayoutLedger(): Promise<{
  store: DynamoLedgerStore;
  client: DynamoDBClient;
  tableName: string;
}> {
  const endpoint = process.env.TEST_DYNAMODB_ENDPOINT;
  if (!endpoint)
    throw new Error('TEST_DYNAMODB_ENDPOINT is not set: run with jest (its global setup starts DynamoDB Local)');
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const tableName = `p${randomBytes(4).toString('hex')}-Ledger`;
  await ensureTable(client, LEDGER_TABLE, tableName);
  return { store: new DynamoLedgerStore(client, tableName), client, tableName };
}

/** Test creators go live with this many shards (the real default is 32; fewer keeps reads small). */
export const TEST_CREATOR_SHARDS = 4;

export function adultCaller(userId: string, country = 'US'): Caller {
  return { userId, birthdate: '1990-01-01', country, parentalConsent: false };
}

/**
 * Credits diamonds as a gift does: the creator's shard item and a gift_received entry on the
 * shard's entry partition, in one transaction (and the wallet's shard count, set when going live).
 */
export async function seedDiamonds(
  store: DynamoLedgerStore,
  userId: string,
  diamonds: number,
  shards = TEST_CREATOR_SHARDS,
): Promise<void> {
  const giftTxId = `gift_${randomBytes(6).toString('hex')}`;
  const shard = shardFor(giftTxId, shards);
  const createdAt = new Date().toISOString();
  await store.transactWrite([
    store.update('creator shards', keys.wallet(userId), {
      expression: 'SET creatorShards = if_not_exists(creatorShards, :shards)',
      values: { ':shards': shards },
    }),
    store.update('shard credit', keys.walletShard(userId, shard), {
      expression: 'ADD diamonds :diamonds',
      values: { ':diamonds': diamonds },
    }),
    store.put(
      'gift_received entry',
      entryItem(keys.shardEntry(userId, shard, createdAt, giftTxId), {
        id: giftTxId,
        userId,
        type: 'gift_received',
        coins: 0,
        owedCoins: 0,
        diamonds,
        pendingDiamonds: 0,
        createdAt,
        ref: { giftTxId, seed: 'test' },
      }),
    ),
  ]);
}

export async function setLocked(store: DynamoLedgerStore, userId: string, locked: boolean): Promise<void> {
  await store.transactWrite([
    store.update('lock', keys.wallet(userId), {
      expression: 'SET locked = :locked, lockReason = :reason',
      values: { ':locked': locked, ':reason': 'owner' },
    }),
  ]);
}

/** A Connect port double: the payout id as idempotency key returns the first transfer again, as Stripe does. */
export class FakeConnect implements ConnectPayouts {
  readonly transfersByKey = new Map<string, TransferMade & { request: TransferRequest }>();
  readonly createTransferCalls: TransferRequest[] = [];
  readonly lookups: string[] = [];
  readonly accounts = new Map<string, ConnectAccount>();
  readonly linkCalls: string[] = [];
  /** Errors thrown by the next createTransfer calls, in order. */
  readonly transferErrors: Error[] = [];
  private sequence = 0;

  async createAccount(input: { userId: string }): Promise<ConnectAccount> {
    const existing = this.accounts.get(input.userId);
    if (existing) return existing;
    this.sequence += 1;
    const account = { accountId: `acct_fake${this.sequence}_${randomBytes(3).toString('hex')}`, payoutsEnabled: false };
    this.accounts.set(input.userId, account);
    return account;
  }

  async createAccountLink(accountId: string): Promise<{ url: string }> {
    this.linkCalls.push(accountId);
    return { url: `https://connect.example/onboarding/${accountId}/${this.linkCalls.length}` };
  }

  async createTransfer(request: TransferRequest): Promise<TransferMade> {
    this.createTransferCalls.push(request);
    const error = this.transferErrors.shift();
    if (error) throw error;
    const existing = this.transfersByKey.get(request.payoutId);
    if (existing) return { transferId: existing.transferId };
    this.sequence += 1;
    const transfer = { transferId: `tr_fake${this.sequence}`, request };
    this.transfersByKey.set(request.payoutId, transfer);
    return { transferId: transfer.transferId };
  }

  async findTransferByGroup(payoutId: string): Promise<TransferMade | undefined> {
    this.lookups.push(payoutId);
    const existing = this.transfersByKey.get(payoutId);
    return existing ? { transferId: existing.transferId } : undefined;
  }
}

export class RecordingQueue implements PayoutQueue {
  readonly sent: string[] = [];
  failNext = 0;

  async send(payoutId: string): Promise<void> {
    if (this.failNext > 0) {
      this.failNext -= 1;
      throw new Error('SendMessage failed (injected)');
    }
    this.sent.push(payoutId);
  }
}

/** Links a payouts-enabled account for a user directly in the ledger (what onboarding + account.updated leave). */
export async function linkEnabledAccount(
  store: DynamoLedgerStore,
  userId: string,
  accountId = `acct_${randomBytes(4).toString('hex')}`,
  payoutsEnabled = true,
): Promise<string> {
  const now = new Date().toISOString();
  await store.transactWrite([
    store.put('payout account', {
      ...keys.payoutAccount(userId),
      userId,
      accountId,
      payoutsEnabled,
      createdAt: now,
      updatedAt: now,
    }),
    store.put('mapping', { ...keys.connectAccount(accountId), userId, createdAt: now }),
  ]);
  return accountId;
}
