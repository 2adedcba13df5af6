import { createHash } from 'node:crypto';
import type { ItemKey } from '../../ports/ledger-store';

/**
 * Every key of the ledger table, in one place. Partition keys are chosen so that no single key
 * takes a hot creator's whole traffic: a creator's gift credits and their entries are spread
 * over `shards` partitions picked from the gift id (docs/DESIGN.md, Creator balances).
 */
export type { ItemKey };

/** Partition-key prefix of the rate-limit counters (the IAM grant of every authenticated function names it). */
export const RATE_PREFIX = 'RATE#';
/** Sort-key prefix of ledger entries; `TX#<ISO time>#<id>` sorts entries by time. */
export const ENTRY_PREFIX = 'TX#';
/** The first string after every `TX#...` sort key: the upper bound of an entry query. */
export const ENTRY_PREFIX_END = 'TX$';

/**
 * A user id as it appears inside a key. `sub` is the identity provider's and may hold any
 * character (Auth0 issues `auth0|123`; an OIDC issuer of your own may issue `alice#E18`), while
 * keys use `#` as their separator: `USER#${'alice#E18'}` would be the partition of alice's gift
 * entry shard 18. Percent-encoding `%` and `#` (only these two) makes the mapping injective and
 * keeps `#` out of the user's part, so no id can name another user's items. Every id without
 * `%` or `#` keeps exactly the key it had before, so existing data needs no migration.
 */
export function keyUserId(userId: string): string {
  return userId.replace(/%/g, '%25').replace(/#/g, '%23');
}

/** The inverse of keyUserId (the reconciler reads user ids back out of partition keys). */
export function userIdFromKey(encoded: string): string {
  return encoded.replace(/%23/g, '#').replace(/%25/g, '%');
}

const user = (userId: string): string => `USER#${keyUserId(userId)}`;

export const keys = {
  wallet: (userId: string): ItemKey => ({ pk: user(userId), sk: 'WALLET' }),
  /** One of a creator's diamond shards; folded into the wallet before a payout. */
  walletShard: (userId: string, shard: number): ItemKey => ({ pk: `${user(userId)}#S${shard}`, sk: 'SHARD' }),
  entry: (userId: string, createdAt: string, entryId: string): ItemKey => ({
    pk: user(userId),
    sk: `${ENTRY_PREFIX}${createdAt}#${entryId}`,
  }),
  /** A creator's gift_received entries live on shard partitions of their own. */
  shardEntryPartition: (userId: string, shard: number): string => `${user(userId)}#E${shard}`,
  shardEntry: (userId: string, shard: number, createdAt: string, entryId: string): ItemKey => ({
    pk: `${user(userId)}#E${shard}`,
    sk: `${ENTRY_PREFIX}${createdAt}#${entryId}`,
  }),
  /** The month's recharge spending, for the budget (YYYY-MM, UTC). */
  budgetMonth: (userId: string, month: string): ItemKey => ({ pk: user(userId), sk: `BUDGET#${month}` }),
  /** One change of a user's monthly limit, kept so the books can tell the limit in force at any time. */
  budgetLimitChange: (userId: string, at: string, changeId: string): ItemKey => ({
    pk: user(userId),
    sk: `BUDGETLIMIT#${at}#${changeId}`,
  }),
  /** Diamonds paid out on one UTC day, for the daily maximum. */
  payoutDay: (userId: string, day: string): ItemKey => ({ pk: user(userId), sk: `PAYOUTDAY#${day}` }),
  payoutAccount: (userId: string): ItemKey => ({ pk: user(userId), sk: 'PAYOUTACCOUNT' }),
  connectAccount: (accountId: string): ItemKey => ({ pk: `ACCOUNT#${accountId}`, sk: 'ACCOUNT' }),
  idempotency: (userId: string, scope: string, idempotencyKey: string): ItemKey => ({
    pk: `IDEM#${keyUserId(userId)}#${scope}#${sha256Hex(idempotencyKey)}`,
    sk: 'IDEM',
  }),
  recharge: (rechargeId: string): ItemKey => ({ pk: `RECHARGE#${rechargeId}`, sk: 'RECHARGE' }),
  paymentIntent: (paymentIntentId: string): ItemKey => ({ pk: `PI#${paymentIntentId}`, sk: 'PI' }),
  stripeEvent: (eventId: string): ItemKey => ({ pk: `EVENT#${eventId}`, sk: 'EVENT' }),
  /** A user's report of one of their transactions (POST /v1/wallet/transactions/{id}/report). */
  transactionReport: (userId: string, reportId: string): ItemKey => ({ pk: user(userId), sk: `REPORT#${reportId}` }),
  /** A support-desk case (a report, or a wallet locked by a dispute or refund): shared/usecases/desk-cases.ts. */
  deskCase: (caseId: string): ItemKey => ({ pk: `CASE#${caseId}`, sk: 'CASE' }),
  /**
   * A notification that is not a ledger entry (`report_resolved`), on a partition of its own that
   * sorts like the creator's entry shards (`TX#<time>#<id>`), so one cursor pages them all. The
   * reconciler reads only `USER#<id>`, `#S<n>` and `#E<n>` partitions as money.
   */
  notificationPartition: (userId: string): string => `${user(userId)}#N`,
  notification: (userId: string, createdAt: string, notificationId: string): ItemKey => ({
    pk: `${user(userId)}#N`,
    sk: `${ENTRY_PREFIX}${createdAt}#${notificationId}`,
  }),
  payout: (payoutId: string): ItemKey => ({ pk: `PAYOUT#${payoutId}`, sk: 'PAYOUT' }),
  /** A teenager's invitation to a guardian (shared/usecases/guardians.ts). */
  guardianInvite: (inviteId: string): ItemKey => ({ pk: `INVITE#${inviteId}`, sk: 'INVITE' }),
  /** One decision about a teenager's consent (granted, declined, revoked, budget set): the audit trail. */
  consentRecord: (teenId: string, at: string, recordId: string): ItemKey => ({
    pk: user(teenId),
    sk: `CONSENT#${at}#${recordId}`,
  }),
  /** A guardian's link to a teenager whose consent they gave. */
  ward: (guardianId: string, teenId: string): ItemKey => ({ pk: user(guardianId), sk: `WARD#${keyUserId(teenId)}` }),
  /**
   * A user's cross-instance request counter for one rate-limit window (shared/http/rate-limit.ts).
   * The `RATE#` prefix is all an authenticated function may write outside its own grants (IAM
   * dynamodb:LeadingKeys), and TTL removes the item after its window.
   */
  rateWindow: (userId: string, requestClass: string, window: number): ItemKey => ({
    pk: `${RATE_PREFIX}${keyUserId(userId)}#${requestClass}#${window}`,
    sk: 'RATE',
  }),
  /** A creator's payouts, newest last: the item only names the payout (its status lives on the payout). */
  userPayout: (userId: string, createdAt: string, payoutId: string): ItemKey => ({
    pk: user(userId),
    sk: `PAYOUT#${createdAt}#${payoutId}`,
  }),
  stream: (streamId: string): ItemKey => ({ pk: `STREAM#${streamId}`, sk: 'STREAM' }),
  /**
   * A batch of broadcast events; sk is the batch's last seq, zero-padded so it sorts. Batches
   * are spread over EVENT_LOG_PARTITIONS keys by their last seq: one key for a busy stream's
   * whole catch-up log would take ~0.4 WCU per gift, 4,000 WCU/s at 10,000 gifts/s.
   */
  streamEventBatch: (streamId: string, lastSeq: number): ItemKey => ({
    pk: streamEventPartition(streamId, eventLogPartition(lastSeq)),
    sk: `B#${String(lastSeq).padStart(12, '0')}`,
  }),
  /** One operator change (shared/usecases/audit.ts): one partition, newest last. */
  auditRecord: (at: string, auditId: string): ItemKey => ({ pk: 'AUDIT', sk: `AUDIT#${at}#${auditId}` }),
  /** A special offer (shared/usecases/offers.ts): one partition, read whole by the catalog. */
  offer: (offerId: string): ItemKey => ({ pk: 'OFFERS', sk: `OFFER#${offerId}` }),
  /**
   * A user's first-recharge offer: held by the one recharge that reserved it (`rechargeId`), so a
   * user is granted it once, however many requests race for it.
   */
  firstRechargeOffer: (userId: string): ItemKey => ({ pk: user(userId), sk: 'FIRSTRECHARGEOFFER' }),
  leaderboardEntry: (streamId: string, shard: number, userId: string): ItemKey => ({
    pk: `STREAM#${streamId}#LB${shard}`,
    sk: `U#${keyUserId(userId)}`,
  }),
};

/** Partition keys a stream's catch-up log is spread over (see keys.streamEventBatch). */
export const EVENT_LOG_PARTITIONS = 8;

/**
 * The log partition of the batch ending at `lastSeq`: MurmurHash3's 32-bit finalizer, whose
 * output bits each depend on every input bit. Not `lastSeq % EVENT_LOG_PARTITIONS`: a room whose
 * runs carry a steady number of gifts (28 a run, say) ends its batches on two residues only and
 * puts the log on a quarter of the keys; the bench's hot creator measured one partition at
 * 1,353 WCU/s that way. Readers query every partition, so the mapping is free to change.
 */
export function eventLogPartition(lastSeq: number): number {
  let hash = lastSeq >>> 0;
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
  hash = (hash ^ (hash >>> 16)) >>> 0;
  return hash % EVENT_LOG_PARTITIONS;
}

export function streamEventPartition(streamId: string, partition: number): string {
  return `STREAM#${streamId}#EVENTS#${partition}`;
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** A stable shard in [0, shards) for an id: the same gift always lands on the same shard. */
export function shardFor(id: string, shards: number): number {
  return createHash('sha256').update(id).digest().readUInt32BE(0) % shards;
}

export function padShard(value: number): string {
  return String(value).padStart(3, '0');
}
