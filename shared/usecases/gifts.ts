import { createHash } from 'node:crypto';
import * as z from 'zod';
import { giftItems } from '../adapters/dynamo/gift-items';
import { keys, shardFor } from '../adapters/dynamo/keys';
import type { Item, LedgerStore, WriteOp } from '../ports/ledger-store';
import { bucketNudge, type GiftEventPublisher } from '../adapters/gift-events';
import { findGift } from '../domain/catalog';
import { diamondsForCoins, type Economy } from '../domain/economy';
import {
  AgeRestrictedError,
  DomainError,
  InsufficientCoinsError,
  InvariantViolation,
  SelfGiftError,
  StreamNotLiveError,
  ValidationError,
  WalletLockedError,
} from '../domain/errors';
import { assertMaySpend, type Caller } from '../domain/identity';
import { consentCondition, consentHolds, type ConsentCondition } from './consent-condition';
import type { LedgerEntry } from '../domain/ledger';
import { logger } from '../logger';
import { AlreadyDone, findStoredAnswer, recordAnswerOp, type IdempotentRequest } from './idempotency';
import {
  liveFenceAttribute,
  readStream,
  unsentPartitionCount,
  unsentPartitionOf,
  unsentStatusPk,
  type StreamRecord,
} from './streams';

/**
 * Sending a gift: one use case behind `POST /v1/streams/{id}/gifts` and the WebSocket `sendGift`.
 *
 * One TransactWriteItems of five small items (each well under 1 KB, so 2 write units each):
 *   1. the idempotency record (the HTTP Idempotency-Key or the WebSocket requestId),
 *   2. the sender's wallet: coins - cost, if the coins cover it and the wallet is unlocked,
 *   3. one of the creator's diamond shards (USER#c#S{k}): + diamonds,
 *   4. the sender's gift_sent entry,
 *   5. the creator's gift_received entry on USER#c#E{k}, which is also the stream's gift record
 *      and the broadcast outbox: while it carries statusPk `UNSENT#<stream>#<p>` (p is k modulo
 *      the stream's unsent partitions) the sparse byStatus index lists it as not yet broadcast.
 * k is picked from the gift id, so a famous creator's credits spread over `creatorShards` keys.
 * Nothing in it touches the stream item: a stream takes gifts at the rate of its creator's shards.
 */

/** docs/API.md: quantity 1-99 in one send. */
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
  /** Live streams read recently by this instance (the handlers keep one per warm instance). */
  streamCache?: StreamCache;
  /** Senders who lost a balance race lately, per warm instance (the handlers keep one). */
  balanceRaces?: BalanceRaces;
  /** Senders' wallets as this instance last read or wrote them (the handlers keep one). */
  senderWallets?: SenderWallets;
}

/** What is stored with the idempotency key: the balance is read again on every answer. */
const storedGiftAnswer = z.object({ giftTxId: z.string().min(1), coinsSpent: z.number().int().positive() });
type StoredGiftAnswer = z.infer<typeof storedGiftAnswer>;

/**
 * The gift a request asks for, as the idempotency fingerprint: the same for HTTP and WebSocket,
 * so one key used on both channels for the same gift is one gift.
 */
export function giftFingerprint(request: Pick<SendGiftRequest, 'streamId' | 'giftId' | 'quantity'>): string {
  return createHash('sha256')
    .update(JSON.stringify(['gift', request.streamId, request.giftId, request.quantity]))
    .digest('hex');
}

function insufficientOrLocked(cost: number, consent?: ConsentCondition) {
  return (old: Item | undefined): Error => {
    if (old?.locked === true) return new WalletLockedError('Your wallet is locked.');
    if (!consentHolds(consent, old))
      return new AgeRestrictedError('Under the age of majority, buying and gifting need parental consent.');
    const balance = typeof old?.coins === 'number' ? old.coins : 0;
    return new InsufficientCoinsError(`This gift costs ${cost} coins; your balance is ${balance}.`);
  };
}

/** What one gift's transaction is built from. */
export interface GiftOpsInput {
  idempotency: IdempotentRequest;
  senderId: string;
  creatorId: string;
  streamId: string;
  creatorShards: number;
  /** The stream's unsent partitions as read (unsentPartitionCount): the record's index partition. */
  unsentPartitions: number;
  giftId: string;
  quantity: number;
  cost: number;
  diamonds: number;
  giftTxId: string;
  now: Date;
  /**
   * The sender's balance as read (consistently) before: the debit then sets the new balance and
   * is conditioned on the balance still being this one, so the answer needs no read after the
   * commit. Without it the debit subtracts and the balance is read after (the fallback).
   */
  seenCoins?: number;
  /** The stream's gift fence is open on the creator's shards (streams.ts): the credit is conditioned on it. */
  fenced?: boolean;
  /** A teenager's debit is conditioned on their consent as the wallet records it (consentCondition). */
  consent?: ConsentCondition;
}

/** The gift's two ledger entries: the sender's gift_sent and the creator's gift_received. */
function giftEntries(input: GiftOpsInput): { sent: LedgerEntry; received: LedgerEntry } {
  const createdAt = input.now.toISOString();
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
    ref: {
      streamId: input.streamId,
      fromUserId: input.senderId,
      giftId: input.giftId,
      quantity: input.quantity,
      coins: input.cost,
    },
  };
  return { sent, received };
}

/**
 * The five ops of one gift. Exported for the unit test that pins the exact items and for the
 * benchmark that prices them; the op order puts the idempotency record first, so a concurrent
 * duplicate that also finds the coins spent replays rather than answering INSUFFICIENT_COINS.
 */
export function giftOps(store: LedgerStore, input: GiftOpsInput): WriteOp[] {
  const shard = shardFor(input.giftTxId, input.creatorShards);
  const answer: StoredGiftAnswer = { giftTxId: input.giftTxId, coinsSpent: input.cost };
  const { sent, received } = giftEntries(input);
  return [
    recordAnswerOp(store, input.idempotency, { status: GIFT_ANSWER_STATUS, body: answer }, input.now),
    debitOp(store, input.senderId, input.cost, input.seenCoins, input.consent),
    giftItems.creditCreatorShard(
      store,
      { creatorId: input.creatorId, shard },
      input.diamonds,
      // After the end's transaction closed the fence, no gift to the stream can commit.
      input.fenced ? liveFenceAttribute(input.streamId) : undefined,
      () => new StreamNotLiveError('This stream is not live.'),
    ),
    giftItems.sentEntry(store, sent),
    giftItems.receivedEntry(
      store,
      shard,
      received,
      unsentStatusPk(input.streamId, unsentPartitionOf(shard, input.unsentPartitions)),
    ),
  ];
}

/** The debit's condition failed only because another debit or credit moved the balance since it was read. */
class BalanceMoved extends Error {}

/**
 * The sender's debit. With the balance seen, it writes the new balance under the condition that
 * the balance is still the one read (and covers the cost, and the wallet is unlocked); a balance
 * that moved meanwhile is BalanceMoved, and the gift is tried again on a fresh read.
 */
function debitOp(
  store: LedgerStore,
  senderId: string,
  cost: number,
  seenCoins: number | undefined,
  consent: ConsentCondition | undefined,
): WriteOp {
  if (seenCoins === undefined)
    return giftItems.debitSender(store, senderId, cost, consent, insufficientOrLocked(cost, consent));
  return giftItems.debitSenderFromSeen(store, senderId, { cost, seenCoins }, consent, (old) => {
    const coins = typeof old?.coins === 'number' ? old.coins : 0;
    if (old?.locked !== true && consentHolds(consent, old) && coins >= cost && coins !== seenCoins)
      return new BalanceMoved();
    return insufficientOrLocked(cost, consent)(old);
  });
}

async function coinsNow(store: LedgerStore, userId: string): Promise<number> {
  const item = await store.getItem(keys.wallet(userId), { consistent: true });
  return typeof item?.coins === 'number' ? item.coins : 0;
}

/**
 * After the commit: tell the broadcaster, once per stream and time bucket (bucketNudge). The
 * bucket is taken now, after the commit, so a gift whose nudge is deduplicated away committed
 * before its bucket ended, and the broadcaster collects until after that. A lost nudge only
 * delays the event (the sweeper finds the record).
 */
async function nudge(
  publisher: GiftEventPublisher,
  now: Date,
  streamId: string,
  giftTxId: string,
  gift?: { pk: string; sk: string },
): Promise<void> {
  try {
    await publisher.publish([bucketNudge(streamId, now, gift)]);
  } catch (error) {
    logger.warn('gift committed but its broadcast nudge was not sent; the sweeper will broadcast it', {
      streamId,
      giftTxId,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

function assertQuantity(quantity: number): void {
  if (!Number.isInteger(quantity) || quantity < MIN_GIFT_QUANTITY || quantity > MAX_GIFT_QUANTITY) {
    throw new ValidationError('The quantity is not valid.', {
      details: [{ path: 'quantity', message: `an integer ${MIN_GIFT_QUANTITY}-${MAX_GIFT_QUANTITY}` }],
    });
  }
}

/**
 * Round trip 1: the sender's wallet (consistent, so the debit can be conditioned on its balance)
 * and the stream, usually both from this instance's memory, then the checks in the contract's
 * order: wallet lock, age, stream live, not the creator's own stream. The idempotency record is
 * not read here: the transaction writes it on condition that it is new, and a replay surfaces
 * there as AlreadyDone. Only a refusal looks for a stored answer first (API.md: a replay answers
 * as the first request did, whatever changed since), and a refusal is never made on a remembered
 * wallet: that wallet is read, and checked again.
 */
async function readAndCheck(
  deps: SendGiftDeps,
  caller: Caller,
  streamId: string,
  idempotency: IdempotentRequest,
  now: Date,
): Promise<{ storedBody: unknown } | { walletItem: Item | undefined; stream: StreamRecord; remembered: boolean }> {
  const remembered = deps.senderWallets?.recall(caller.userId, now.getTime());
  const [walletItem, streamSeen] = await Promise.all([
    remembered ?? deps.store.getItem(keys.wallet(caller.userId), { consistent: true }),
    liveStream(deps, streamId),
  ]);
  try {
    const stream = await checkGift(deps, caller, streamId, walletItem, streamSeen, now);
    return { walletItem, stream, remembered: remembered !== undefined };
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    if (remembered) {
      deps.senderWallets?.forget(caller.userId);
      return readAndCheck(deps, caller, streamId, idempotency, now);
    }
    const stored = await findStoredAnswer<unknown>(deps.store, idempotency, now);
    if (stored) return { storedBody: stored.body };
    throw error;
  }
}

/** The checks before the transaction; the coins (and the lock, again) are its condition's. */
async function checkGift(
  deps: SendGiftDeps,
  caller: Caller,
  streamId: string,
  walletItem: Item | undefined,
  streamSeen: StreamRecord | undefined,
  now: Date,
): Promise<StreamRecord> {
  if (walletItem?.locked === true) throw new WalletLockedError('Your wallet is locked.');
  const appConsent = walletItem?.appConsent;
  assertMaySpend(caller, now, appConsent === 'granted' || appConsent === 'revoked' ? appConsent : null);
  // A refusal is confirmed by a consistent read, so a stream created a moment ago is never refused.
  const stream =
    streamSeen?.status === 'live' ? streamSeen : await readStream(deps.store, streamId, { consistent: true });
  if (stream?.status !== 'live') throw new StreamNotLiveError('This stream is not live.');
  if (stream.creatorId === caller.userId) throw new SelfGiftError('You cannot send a gift to your own stream.');
  return stream;
}

/**
 * The balance the debit is conditioned on, or undefined to subtract and read the balance after:
 * after a balance race (one sender's concurrent gifts), since optimistic retries would make N
 * concurrent gifts cost N^2/2 transactions, and for a sender in a burst, who would lose the race
 * again (a cancelled transaction costs as much as a write).
 */
function conditionedBalance(
  deps: SendGiftDeps,
  senderId: string,
  walletItem: Item | undefined,
  attempt: number,
  now: Date,
): number | undefined {
  if (attempt > BALANCE_RACE_ATTEMPTS || deps.balanceRaces?.racing(senderId, now.getTime()) === true) return undefined;
  return typeof walletItem?.coins === 'number' ? walletItem.coins : 0;
}

/**
 * Checks in docs/API.md's order: validation, wallet lock, age, stream live, not the creator's own
 * stream, coins. The coins (and the lock, again) are checked by the transaction's condition, never
 * by the read before it. A replay answers the first gift with the balance as it is now.
 * Two round trips: the reads (readAndCheck), then the transaction; the answer needs no third.
 */
export async function sendGift(
  deps: SendGiftDeps,
  caller: Caller,
  request: SendGiftRequest,
): Promise<GiftAnswer & { replayed: boolean }> {
  const gift = findGift(request.giftId);
  assertQuantity(request.quantity);
  const cost = gift.coins * request.quantity;
  const now = deps.now();
  const idempotency: IdempotentRequest = {
    userId: caller.userId,
    scope: GIFT_IDEMPOTENCY_SCOPE,
    key: request.idempotencyKey,
    fingerprint: giftFingerprint(request),
  };
  const replay = (stored: unknown) => replayGift(deps, caller.userId, request.streamId, stored);
  let attempt = 1;
  for (;;) {
    const read = await readAndCheck(deps, caller, request.streamId, idempotency, now);
    if ('storedBody' in read) return replay(read.storedBody);
    const { walletItem, stream, remembered } = read;
    const seenCoins = conditionedBalance(deps, caller.userId, walletItem, attempt, now);
    const consent = consentCondition(caller, now);
    const giftTxId = deps.newId('gift', now);
    try {
      await deps.store.transactWrite(
        giftOps(deps.store, {
          idempotency,
          senderId: caller.userId,
          creatorId: stream.creatorId,
          streamId: stream.streamId,
          creatorShards: stream.creatorShards,
          unsentPartitions: unsentPartitionCount(stream),
          giftId: gift.id,
          quantity: request.quantity,
          cost,
          diamonds: diamondsForCoins(deps.economy, cost),
          giftTxId,
          now,
          ...(seenCoins !== undefined && { seenCoins }),
          fenced: stream.fenced === true,
          ...(consent && { consent }),
        }),
      );
    } catch (error) {
      deps.senderWallets?.forget(caller.userId);
      if (error instanceof AlreadyDone) return replay(error.answer.body);
      if (error instanceof BalanceMoved) {
        // A remembered balance that moved (a recharge, a gift through another instance) is not a
        // race: the next attempt reads it, still conditioned on what it reads.
        if (!remembered) {
          deps.balanceRaces?.lost(caller.userId, now.getTime());
          attempt += 1;
        }
        continue;
      }
      if (error instanceof StreamNotLiveError) deps.streamCache?.forget(stream.streamId);
      throw error;
    }
    const answer = await committed(deps, stream, giftTxId, cost, now, caller.userId, seenCoins);
    deps.senderWallets?.remember(caller.userId, { ...walletItem, coins: answer.wallet.coins }, now.getTime());
    return answer;
  }
}

/** A replay answers the first gift with the balance as it is now, and nudges again. */
async function replayGift(
  deps: SendGiftDeps,
  senderId: string,
  streamId: string,
  stored: unknown,
): Promise<GiftAnswer & { replayed: boolean }> {
  const answer = storedGiftAnswer.safeParse(stored);
  if (!answer.success) throw new InvariantViolation('stored gift answer is malformed');
  // The first attempt may have died between its commit and its nudge; a duplicate nudge is deduplicated or finds nothing.
  const [coins] = await Promise.all([
    coinsNow(deps.store, senderId),
    nudge(deps.publisher, deps.now(), streamId, answer.data.giftTxId),
  ]);
  return { ...answer.data, wallet: { coins }, replayed: true };
}

/** Attempts conditioned on the balance read; a gift that loses a balance race then subtracts instead. */
export const BALANCE_RACE_ATTEMPTS = 1;

/** How long a sender who lost a balance race has their gifts subtract at once (BalanceRaces). */
export const BALANCE_RACE_MEMORY_MS = 2_000;

/**
 * Senders who lost a balance race in the last BALANCE_RACE_MEMORY_MS, per warm instance. A
 * sender in a burst (a combo of taps) has several gifts in flight at once: conditioning the next
 * one on the balance as read would fail again and cost a cancelled transaction, so their gifts
 * subtract at once and read the balance after (three round trips instead of a wasted write and
 * three). A sender who sends one gift at a time never loses a race and keeps two round trips.
 */
export class BalanceRaces {
  private readonly until = new Map<string, number>();
  constructor(private readonly maxEntries = 10_000) {}

  lost(senderId: string, now: number): void {
    if (this.until.size >= this.maxEntries) this.until.clear();
    this.until.set(senderId, now + BALANCE_RACE_MEMORY_MS);
  }

  racing(senderId: string, now: number): boolean {
    const until = this.until.get(senderId);
    if (until === undefined) return false;
    if (until > now) return true;
    this.until.delete(senderId);
    return false;
  }
}

/** How long a sender's wallet as this instance last saw it stands in for a read (SenderWallets). */
export const SENDER_WALLET_MEMORY_MS = 10_000;

/**
 * Senders' wallets as this warm instance last read or wrote them. A viewer's gifts come in runs (a
 * combo of taps), and after each commit the instance knows the balance exactly: the debit was
 * conditioned on it. The next gift then conditions its debit on the remembered balance without
 * reading it, and the gift is one round trip. Nothing is decided on memory alone: the transaction
 * still requires the balance to be exactly the remembered one (and the wallet unlocked, and the
 * consent), so a wallet that changed elsewhere cancels it and the gift is tried again on a read;
 * and a refusal is always made on a fresh read (readAndCheck).
 */
export class SenderWallets {
  private readonly wallets = new Map<string, { item: Item; until: number }>();
  constructor(private readonly maxEntries = 10_000) {}

  recall(senderId: string, now: number): Item | undefined {
    const known = this.wallets.get(senderId);
    if (!known) return undefined;
    if (known.until > now) return known.item;
    this.wallets.delete(senderId);
    return undefined;
  }

  remember(senderId: string, item: Item, now: number): void {
    if (this.wallets.size >= this.maxEntries) this.wallets.clear();
    this.wallets.set(senderId, { item, until: now + SENDER_WALLET_MEMORY_MS });
  }

  forget(senderId: string): void {
    this.wallets.delete(senderId);
  }
}

async function committed(
  deps: SendGiftDeps,
  stream: StreamRecord,
  giftTxId: string,
  cost: number,
  now: Date,
  senderId: string,
  seenCoins: number | undefined,
): Promise<GiftAnswer & { replayed: boolean }> {
  const shard = shardFor(giftTxId, stream.creatorShards);
  const recordKey = keys.shardEntry(stream.creatorId, shard, now.toISOString(), giftTxId);
  const [coins] = await Promise.all([
    seenCoins === undefined ? coinsNow(deps.store, senderId) : seenCoins - cost,
    nudge(deps.publisher, deps.now(), stream.streamId, giftTxId, recordKey),
  ]);
  return { giftTxId, coinsSpent: cost, wallet: { coins }, replayed: false };
}

/**
 * Live streams as read in the last STREAM_CACHE_TTL_MS, per warm instance: most gifts then make
 * no read of the stream item at all (one item read per gift would be a hot key). Only streams
 * with a gift fence are cached: a stale "live" cannot let a gift in after the end, because the
 * end's transaction closed the fence the gift's credit is conditioned on.
 */
export const STREAM_CACHE_TTL_MS = 2_000;

export class StreamCache {
  private readonly streams = new Map<string, { stream: StreamRecord; until: number }>();
  private readonly reads = new Map<string, Promise<StreamRecord | undefined>>();
  constructor(private readonly maxEntries = 1_000) {}

  /** The read of this stream in flight, if any. */
  reading(streamId: string): Promise<StreamRecord | undefined> | undefined {
    return this.reads.get(streamId);
  }

  /** Shares a read in flight with the gifts that miss the cache meanwhile; forgotten once settled. */
  read(streamId: string, read: Promise<StreamRecord | undefined>): void {
    this.reads.set(streamId, read);
    const settled = () => {
      if (this.reads.get(streamId) === read) this.reads.delete(streamId);
    };
    read.then(settled, settled);
  }

  get(streamId: string, now: number): StreamRecord | undefined {
    const hit = this.streams.get(streamId);
    return hit && hit.until > now ? hit.stream : undefined;
  }

  remember(stream: StreamRecord, now: number): void {
    if (stream.status !== 'live' || stream.fenced !== true) return;
    if (this.streams.size >= this.maxEntries) this.streams.clear();
    this.streams.set(stream.streamId, { stream, until: now + STREAM_CACHE_TTL_MS });
  }

  forget(streamId: string): void {
    this.streams.delete(streamId);
  }
}

async function liveStream(deps: SendGiftDeps, streamId: string): Promise<StreamRecord | undefined> {
  const cache = deps.streamCache;
  const now = deps.now().getTime();
  const cached = cache?.get(streamId, now);
  if (cached) return cached;
  // Gifts that miss the cache together share one read rather than each making their own.
  const pending = cache?.reading(streamId);
  if (pending) return pending;
  // Eventually consistent: half the units of a consistent read; a refusal is confirmed consistently.
  const read = readStream(deps.store, streamId).then((stream) => {
    if (stream) cache?.remember(stream, now);
    return stream;
  });
  cache?.read(streamId, read);
  return read;
}
