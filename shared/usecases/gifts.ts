import { createHash } from 'node:crypto';
import * as z from 'zod';
import { conditions } from '../adapters/dynamo/conditions';
import { keys, shardFor } from '../adapters/dynamo/keys';
import { entryItem, type Item, type LedgerStore, type WriteOp } from '../adapters/dynamo/ledger-store';
import type { GiftEventPublisher } from '../adapters/gift-events';
import { findGift } from '../domain/catalog';
import { diamondsForCoins, type Economy } from '../domain/economy';
import {
  InsufficientCoinsError,
  InvariantViolation,
  SelfGiftError,
  StreamNotLiveError,
  ValidationError,
  WalletLockedError,
} from '../domain/errors';
import { assertMaySpend, type Caller } from '../domain/identity';
import type { LedgerEntry } from '../domain/ledger';
import { logger } from '../logger';
import { AlreadyDone, findStoredAnswer, recordAnswerOp, type IdempotentRequest } from './idempotency';
import { readStream, unsentStatusPk } from './streams';

/**
 * Sending a gift: one use case behind `POST /v1/streams/{id}/gifts` and the WebSocket `sendGift`.
 *
 * One TransactWriteItems of five small items (each well under 1 KB, so 2 write units each):
 *   1. the idempotency record (the HTTP Idempotency-Key or the WebSocket requestId),
 *   2. the sender's wallet: coins - cost, if the coins cover it and the wallet is unlocked,
 *   3. one of the creator's diamond shards (USER#c#S<k>): + diamonds,
 *   4. the sender's gift_sent entry,
 *   5. the creator's gift_received entry on USER#c#E<k>, which is also the stream's gift record
 *      and the broadcast outbox: while it carries statusPk `UNSENT#<stream>#<k>` the sparse
 *      byStatus index lists it as not yet broadcast.
 * k is picked from the gift id, so a famous creator's credits spread over `creatorShards` keys.
 * Nothing in it touches the stream item: a stream takes gifts at the rate of its creator's shards.
 */

/** API.md: quantity 1-99 in one send. */
export const MIN_GIFT_QUANTITY = 1;
export const MAX_GIFT_QUANTITY = 99;
export const GIFT_IDEMPOTENCY_SCOPE = 'gift';
const GIFT_ANSWER_STATUS = 201;

export interface SendGiftRequest {
  streamId: string;
  giftId: string;
  quantity: number;
  /** The Idempotency-Key header or the WebSocket requestId: both guard the same gifts. */
  idempotencyKey: string;
}

export interface GiftAnswer {
  giftTxId: string;
  coinsSpent: number;
  wallet: { coins: number };
}

export interface SendGiftDeps {
  store: LedgerStore;
  publisher: GiftEventPublisher;
  now: () => Date;
  newId: (prefix: string, now: Date) => string;
  economy: Economy;
}

/** What is stored with the idempotency key: the balance is read again on every answer. */
const storedGiftAnswer = z.object({ giftTxId: z.string().min(1), coinsSpent: z.number().int().positive() });
type StoredGiftAnswer = z.infer<typeof storedGiftAnswer>;

/**
 * The gift a request asks for, as the idempotency fingerprint: the same for HTTP and WebSocket,
 * so one key used on both channels for the same gift is one gift.
 */
export function giftFingerprint(request: Pick<SendGiftRequest, 'streamId' | 'giftId' | 'quantity'>): string {
  return createHash('sha256').update(JSON.stringify(['gift', request.streamId, request.giftId, request.quantity])).digest('hex');
}

function insufficientOrLocked(cost: number) {
  return (old: Item | undefined): Error => {
    if (old?.locked === true) return new WalletLockedError('Your wallet is locked.');
    const balance = typeof old?.coins === 'number' ? old.coins : 0;
    return new InsufficientCoinsError(`This gift costs ${cost} coins; your balance is ${balance}.`);
  };
}

/**
 * The five ops of one gift. Exported for the unit test that pins the exact items and for the
 * benchmark that prices them; the op order puts the idempotency record first, so a concurrent
 * duplicate that also finds the coins spent replays rather than answering INSUFFICIENT_COINS.
 */
export function giftOps(
  store: LedgerStore,
  input: {
    idempotency: IdempotentRequest;
    senderId: string;
    creatorId: string;
    streamId: string;
    creatorShards: number;
    giftId: string;
    quantity: number;
    cost: number;
    diamonds: number;
    giftTxId: string;
    now: Date;
  },
): WriteOp[] {
  const createdAt = input.now.toISOString();
  const shard = shardFor(input.giftTxId, input.creatorShards);
  const answer: StoredGiftAnswer = { giftTxId: input.giftTxId, coinsSpent: input.cost };
  const sent: LedgerEntry = {
    id: input.giftTxId,
    userId: input.senderId,
    type: 'gift_sent',
    coins: -input.cost,
    owedCoins: 0,
    diamonds: 0,
    pendingDiamonds: 0,
    createdAt,
    ref: { streamId: input.streamId, creatorId: input.creatorId, giftId: input.giftId, quantity: input.quantity },
  };
  const received: LedgerEntry = {
    id: input.giftTxId,
    userId: input.creatorId,
    type: 'gift_received',
    coins: 0,
    owedCoins: 0,
    diamonds: input.diamonds,
    pendingDiamonds: 0,
    createdAt,
    // The gift as viewers will see it: the broadcaster builds the event from this record alone.
    ref: { streamId: input.streamId, fromUserId: input.senderId, giftId: input.giftId, quantity: input.quantity, coins: input.cost },
  };
  return [
    recordAnswerOp(store, input.idempotency, { status: GIFT_ANSWER_STATUS, body: answer }, input.now),
    store.update(
      'debit sender',
      keys.wallet(input.senderId),
      {
        expression: 'SET coins = coins - :cost',
        condition: `${conditions.coinsCoverCost} AND ${conditions.walletUnlocked}`,
        values: { ':cost': input.cost, ':false': false },
      },
      insufficientOrLocked(input.cost),
    ),
    store.update('credit creator shard', keys.walletShard(input.creatorId, shard), {
      expression: 'ADD diamonds :diamonds',
      values: { ':diamonds': input.diamonds },
    }),
    store.put('gift_sent entry', entryItem(keys.entry(input.senderId, createdAt, input.giftTxId), sent)),
    store.put(
      'gift_received entry',
      entryItem(keys.shardEntry(input.creatorId, shard, createdAt, input.giftTxId), received, {
        statusPk: unsentStatusPk(input.streamId, shard),
        statusSk: `${createdAt}#${input.giftTxId}`,
      }),
    ),
  ];
}

async function coinsNow(store: LedgerStore, userId: string): Promise<number> {
  const item = await store.getItem(keys.wallet(userId), { consistent: true });
  return typeof item?.coins === 'number' ? item.coins : 0;
}

/** After the commit: tell the broadcaster. A lost nudge only delays the event (the sweeper finds the record). */
async function nudge(publisher: GiftEventPublisher, streamId: string, giftTxId: string, gift?: { pk: string; sk: string }): Promise<void> {
  try {
    await publisher.publish([{ nudge: { streamId, ...(gift && { gift }) }, deduplicationId: giftTxId }]);
  } catch (error) {
    logger.warn('gift committed but its broadcast nudge was not sent; the sweeper will broadcast it', {
      streamId,
      giftTxId,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/**
 * Checks in API.md's order: validation, wallet lock, age, stream live, not the creator's own
 * stream, coins. The coins (and the lock, again) are checked by the transaction's condition, never
 * by the read before it. A replay answers the first gift with the balance as it is now.
 */
export async function sendGift(deps: SendGiftDeps, caller: Caller, request: SendGiftRequest): Promise<GiftAnswer & { replayed: boolean }> {
  const gift = findGift(request.giftId);
  if (!Number.isInteger(request.quantity) || request.quantity < MIN_GIFT_QUANTITY || request.quantity > MAX_GIFT_QUANTITY) {
    throw new ValidationError('The quantity is not valid.', { details: [{ path: 'quantity', message: `an integer ${MIN_GIFT_QUANTITY}-${MAX_GIFT_QUANTITY}` }] });
  }
  const cost = gift.coins * request.quantity;
  const now = deps.now();
  const idempotency: IdempotentRequest = {
    userId: caller.userId,
    scope: GIFT_IDEMPOTENCY_SCOPE,
    key: request.idempotencyKey,
    fingerprint: giftFingerprint(request),
  };

  const replay = async (stored: unknown): Promise<GiftAnswer & { replayed: boolean }> => {
    const answer = storedGiftAnswer.safeParse(stored);
    if (!answer.success) throw new InvariantViolation('stored gift answer is malformed');
    // The first attempt may have died between its commit and its nudge; a duplicate nudge is deduplicated or finds nothing.
    const [coins] = await Promise.all([coinsNow(deps.store, caller.userId), nudge(deps.publisher, request.streamId, answer.data.giftTxId)]);
    return { ...answer.data, wallet: { coins }, replayed: true };
  };

  // The reads the checks need, at once; the checks below still run in the contract's order.
  // Every gift to a stream reads its item: an eventually consistent read (half the units of a
  // consistent one) lets one stream item serve ~6,000 gifts a second instead of ~3,000.
  const [stored, walletItem, streamSeen] = await Promise.all([
    findStoredAnswer<unknown>(deps.store, idempotency, now),
    deps.store.getItem(keys.wallet(caller.userId)),
    readStream(deps.store, request.streamId),
  ]);
  if (stored) return replay(stored.body);
  if (walletItem?.locked === true) throw new WalletLockedError('Your wallet is locked.');
  assertMaySpend(caller, now);
  // A refusal is confirmed by a consistent read, so a stream created a moment ago is never refused.
  // A stale "live" can only let a gift in just after the end, which a gift racing the end does anyway.
  const stream = streamSeen?.status === 'live' ? streamSeen : await readStream(deps.store, request.streamId, { consistent: true });
  if (!stream || stream.status !== 'live') throw new StreamNotLiveError('This stream is not live.');
  if (stream.creatorId === caller.userId) throw new SelfGiftError('You cannot send a gift to your own stream.');

  const giftTxId = deps.newId('gift', now);
  const ops = giftOps(deps.store, {
    idempotency,
    senderId: caller.userId,
    creatorId: stream.creatorId,
    streamId: stream.streamId,
    creatorShards: stream.creatorShards,
    giftId: gift.id,
    quantity: request.quantity,
    cost,
    diamonds: diamondsForCoins(deps.economy, cost),
    giftTxId,
    now,
  });
  try {
    await deps.store.transactWrite(ops);
  } catch (error) {
    if (error instanceof AlreadyDone) return replay(error.answer.body);
    throw error;
  }
  const shard = shardFor(giftTxId, stream.creatorShards);
  const recordKey = keys.shardEntry(stream.creatorId, shard, now.toISOString(), giftTxId);
  const [coins] = await Promise.all([coinsNow(deps.store, caller.userId), nudge(deps.publisher, stream.streamId, giftTxId, recordKey)]);
  return { giftTxId, coinsSpent: cost, wallet: { coins }, replayed: false };
}
