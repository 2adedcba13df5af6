import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import { ensureTable } from '../../../shared/adapters/dynamo/create-tables';
import { ENTRY_PREFIX, keys } from '../../../shared/adapters/dynamo/keys';
import { newId } from '../../../shared/adapters/ids';
import { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import type { Item } from '../../../shared/ports/ledger-store';
import { LEDGER_TABLE } from '../../../shared/adapters/dynamo/schema';
import {
  paymentIdempotencyKey,
  type CancelOutcome,
  type CreatedPaymentIntent,
  type CreatePaymentIntentInput,
  type Payments,
  type RefundInput,
} from '../../../shared/adapters/payments';
import type { WebhookDeps } from '../../../shared/usecases/stripe-webhook';
import { IdempotencyKeyReusedError, TransientDependencyError } from '../../../shared/domain/errors';
import type { Caller } from '../../../shared/domain/identity';
import { conditions } from '../../../shared/adapters/dynamo/conditions';
import { entryItem } from '../../../shared/adapters/dynamo/items';
import { InsufficientCoinsError } from '../../../shared/domain/errors';
import { logger } from '../../../shared/logger';

/**
 * Shared pieces of the recharge tests: a fresh ledger table in the run's DynamoDB Local (the
 * use cases run against the real engine, conditions and transactions included), a fake payments
 * port that counts its calls, and Stripe-shaped events.
 */

export async function freshLedger(): Promise<{ store: DynamoLedgerStore; client: DynamoDBClient }> {
  const endpoint = process.env.TEST_DYNAMODB_ENDPOINT;
  if (!endpoint)
    throw new Error('TEST_DYNAMODB_ENDPOINT is not set: run with jest (its global setup starts DynamoDB Local)');
  logger.setLogLevel('SILENT');
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const tableName = `r${randomBytes(4).toString('hex')}-Ledger`;
  await ensureTable(client, LEDGER_TABLE, tableName);
  return { store: new DynamoLedgerStore(client, tableName), client };
}

/** A fake Stripe: the same key with the same parameters returns the same PaymentIntent, as Stripe does. */
export class FakePayments implements Payments {
  readonly createCalls: CreatePaymentIntentInput[] = [];
  readonly cancelCalls: string[] = [];
  /** What cancel answers per PaymentIntent; 'canceled' by default. */
  readonly cancelOutcomes = new Map<string, CancelOutcome>();
  private readonly byKey = new Map<string, { params: string; created: CreatedPaymentIntent }>();
  private sequence = 0;

  async createPaymentIntent(input: CreatePaymentIntentInput): Promise<CreatedPaymentIntent> {
    this.createCalls.push(input);
    const key = paymentIdempotencyKey(input.userId, input.clientKey);
    const params = JSON.stringify([input.price, input.rechargeId, input.packageId, input.coins, input.userId]);
    const existing = this.byKey.get(key);
    if (existing) {
      if (existing.params !== params) throw new IdempotencyKeyReusedError('different parameters');
      return existing.created;
    }
    this.sequence += 1;
    const id = `pi_fake${this.sequence}_${randomBytes(3).toString('hex')}`;
    const created = { paymentIntentId: id, clientSecret: `${id}_secret_x` };
    this.byKey.set(key, { params, created });
    return created;
  }

  readonly refundCalls: RefundInput[] = [];
  /** Idempotency keys Stripe has already refunded under: the same key makes no second refund. */
  readonly refundedKeys = new Set<string>();
  /** Set to make the next refund call fail the way a Stripe outage would. */
  failNextRefund = false;

  async refundPayment(input: RefundInput): Promise<'refunded' | 'already_refunded'> {
    this.refundCalls.push(input);
    if (this.failNextRefund) {
      this.failNextRefund = false;
      throw new TransientDependencyError('Stripe did not refund the payment');
    }
    if (this.refundedKeys.has(input.idempotencyKey)) return 'refunded';
    this.refundedKeys.add(input.idempotencyKey);
    return 'refunded';
  }

  async cancelPaymentIntent(paymentIntentId: string): Promise<CancelOutcome> {
    this.cancelCalls.push(paymentIntentId);
    return this.cancelOutcomes.get(paymentIntentId) ?? 'canceled';
  }

  async verifyWebhook(): Promise<unknown> {
    throw new Error('the fake does not verify webhooks; the use case is called with events directly');
  }
}

/** The webhook's dependencies for a test deployment (test-mode key: events say livemode false). */
export function webhookDeps(
  store: DynamoLedgerStore,
  now: () => Date = () => new Date(),
  payments: FakePayments = new FakePayments(),
  extra: Partial<Pick<WebhookDeps, 'livemode' | 'notifyWallet'>> = {},
): WebhookDeps {
  return { store, now, newId, payments, livemode: false, ...extra };
}

export function adult(userId: string, country = 'US'): Caller {
  return { userId, birthdate: '1990-01-01', country, parentalConsent: false };
}

let eventSequence = 0;
export function eventId(): string {
  eventSequence += 1;
  return `evt_test${eventSequence}_${randomBytes(3).toString('hex')}`;
}

export const events = {
  succeeded: (paymentIntentId: string, id = eventId()) => ({
    id,
    object: 'event',
    livemode: false,
    type: 'payment_intent.succeeded',
    data: { object: { id: paymentIntentId, object: 'payment_intent', metadata: {} as Record<string, string> } },
  }),
  failed: (paymentIntentId: string, id = eventId()) => ({
    id,
    object: 'event',
    livemode: false,
    type: 'payment_intent.payment_failed',
    data: { object: { id: paymentIntentId, object: 'payment_intent' } },
  }),
  canceled: (paymentIntentId: string, id = eventId()) => ({
    id,
    object: 'event',
    livemode: false,
    type: 'payment_intent.canceled',
    data: { object: { id: paymentIntentId, object: 'payment_intent' } },
  }),
  dispute: (paymentIntentId: string, amount: number, disputeId = `dp_${paymentIntentId}`, id = eventId()) => ({
    id,
    object: 'event',
    livemode: false,
    type: 'charge.dispute.created',
    data: {
      object: {
        id: disputeId,
        object: 'dispute',
        amount,
        charge: `ch_${paymentIntentId}`,
        payment_intent: paymentIntentId,
      },
    },
  }),
  disputeClosed: (
    paymentIntentId: string,
    amount: number,
    status: 'won' | 'lost',
    disputeId = `dp_${paymentIntentId}`,
    id = eventId(),
  ) => ({
    id,
    object: 'event',
    livemode: false,
    type: 'charge.dispute.closed',
    data: {
      object: {
        id: disputeId,
        object: 'dispute',
        amount,
        status,
        charge: `ch_${paymentIntentId}`,
        payment_intent: paymentIntentId,
      },
    },
  }),
  refunded: (paymentIntentId: string, amount: number, amountRefunded: number, id = eventId()) => ({
    id,
    object: 'event',
    livemode: false,
    type: 'charge.refunded',
    data: {
      object: {
        id: `ch_${paymentIntentId}`,
        object: 'charge',
        amount,
        amount_refunded: amountRefunded,
        payment_intent: paymentIntentId,
      },
    },
  }),
};

/** Every entry of a user's main partition (no creator shards in these tests). */
export async function entriesOf(store: DynamoLedgerStore, userId: string): Promise<Item[]> {
  const items: Item[] = [];
  let startKey: Parameters<DynamoLedgerStore['query']>[0]['exclusiveStartKey'];
  do {
    const page = await store.query({
      keyCondition: 'pk = :pk AND begins_with(sk, :prefix)',
      values: { ':pk': keys.wallet(userId).pk, ':prefix': ENTRY_PREFIX },
      consistent: true,
      ...(startKey && { exclusiveStartKey: startKey }),
    });
    items.push(...page.items);
    startKey = page.lastEvaluatedKey;
  } while (startKey);
  return items;
}

export async function entrySums(
  store: DynamoLedgerStore,
  userId: string,
): Promise<{ coins: number; owedCoins: number }> {
  const sums = { coins: 0, owedCoins: 0 };
  for (const entry of await entriesOf(store, userId)) {
    sums.coins += Number(entry.coins ?? 0);
    sums.owedCoins += Number(entry.owedCoins ?? 0);
  }
  return sums;
}

let giftSequence = 0;
/** Spends coins the way a gift does (balance condition in the write, entry in the same transaction). */
export async function spendCoins(store: DynamoLedgerStore, userId: string, coins: number): Promise<boolean> {
  giftSequence += 1;
  const createdAt = new Date().toISOString();
  const id = `gift_test${giftSequence}_${randomBytes(3).toString('hex')}`;
  try {
    await store.transactWrite([
      store.update(
        'debit',
        keys.wallet(userId),
        { expression: 'SET coins = coins - :cost', condition: conditions.coinsCoverCost, values: { ':cost': coins } },
        () => new InsufficientCoinsError('not enough coins'),
      ),
      store.put(
        'entry',
        entryItem(keys.entry(userId, createdAt, id), {
          id,
          userId,
          type: 'gift_sent',
          coins: -coins,
          owedCoins: 0,
          diamonds: 0,
          pendingDiamonds: 0,
          createdAt,
          ref: {},
        }),
      ),
    ]);
    return true;
  } catch (error) {
    if (error instanceof InsufficientCoinsError) return false;
    throw error;
  }
}
