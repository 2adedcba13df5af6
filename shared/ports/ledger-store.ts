import type { LedgerEntry, Wallet } from '../domain/ledger';

/**
 * The ledger as the use cases see it: plain items and keys, writes described as data, and paging
 * by keys of our own type. The DynamoDB adapter (`shared/adapters/dynamo/ledger-store.ts`)
 * implements it; no type here comes from the AWS SDK, so a use case never needs one.
 */

/** The most writes one all-or-nothing `transactWrite` takes: DynamoDB's TransactWriteItems limit. */
export const MAX_TRANSACTION_ITEMS = 100;

/** An item's attributes, as plain values. */
export type Item = Record<string, unknown>;

/** The primary key of a ledger item. */
export interface ItemKey {
  pk: string;
  sk: string;
}

/**
 * Where a query page stopped: the key attributes (table and index) of its last item. Hand it
 * back as `startAfter` to read the next page. The ledger's key attributes are strings or numbers.
 */
export type PageKey = Readonly<Record<string, string | number>>;

/** A condition expression and the `:value` and `#name` placeholders it uses. */
export interface Condition {
  expression: string;
  values?: Item;
  names?: Record<string, string>;
}

/** An update expression, with the condition it is applied under. */
export interface UpdateSpec {
  expression: string;
  condition?: string;
  values?: Item;
  names?: Record<string, string>;
}

/** One write of a transaction, described as data; the adapter turns it into its own request. */
export type WriteRequest =
  | { kind: 'put'; item: Item; condition?: Condition }
  | { kind: 'update'; key: ItemKey; update: UpdateSpec }
  | { kind: 'conditionCheck'; key: ItemKey; condition: Condition };

/** What a failed condition means, given the item as it was when the condition failed. */
export type ConditionFailure = (oldItem: Item | undefined) => Error;

export interface WriteOp {
  /** What this op is, for logs and invariant messages. */
  label: string;
  request: WriteRequest;
  /** Turns this op's failed condition into the error it means. */
  onConditionFailed?: ConditionFailure;
}

export interface QueryInput {
  keyCondition: string;
  values: Item;
  names?: Record<string, string>;
  indexName?: string;
  limit?: number;
  ascending?: boolean;
  filter?: string;
  consistent?: boolean;
  /** The `lastEvaluatedKey` of the previous page. */
  exclusiveStartKey?: PageKey;
}

export interface QueryPage {
  items: Item[];
  /** Present when the query may have more items past this page. */
  lastEvaluatedKey?: PageKey;
}

export interface ReadOptions {
  consistent?: boolean;
}

/** A wallet as one consistent state, with the parts a payout's fold conditions on. */
export interface CreatorBalance {
  /** `diamonds` is the total available: the main item's, plus what the shards hold beyond what was folded. */
  wallet: Wallet;
  mainDiamonds: number;
  /** Every diamond ever credited to the creator's shards. */
  shardCredits: number;
  /** How much of `shardCredits` the main item's `diamonds` already counts. */
  shardDiamondsFolded: number;
  diamondsVersion: number;
}

export interface EntryPage {
  entries: LedgerEntry[];
  nextCursor: string | null;
}

/**
 * Typed reads and the one transactional write path every money move uses. It knows keys and
 * conditions, not business rules: the use cases build the ops.
 */
export interface LedgerStore {
  put(label: string, item: Item, condition?: Condition, onConditionFailed?: ConditionFailure): WriteOp;
  update(label: string, key: ItemKey, update: UpdateSpec, onConditionFailed?: ConditionFailure): WriteOp;
  conditionCheck(label: string, key: ItemKey, condition: Condition, onConditionFailed: ConditionFailure): WriteOp;
  /**
   * Applies every op or none (at most MAX_TRANSACTION_ITEMS). A failed condition becomes the error
   * its op names; a retry after a lost answer never applies the transaction twice.
   */
  transactWrite(ops: WriteOp[], options?: { clientRequestToken?: string }): Promise<void>;
  /**
   * One put or update on its own, outside a transaction: half the write units (a transaction
   * takes two per KB). A retry after a lost answer may apply it again, so only for an op whose
   * condition turns a repeat into its failure (a fold that carries the seq it folded up to).
   */
  writeOne(op: WriteOp): Promise<void>;
  getItem(key: ItemKey, options?: ReadOptions): Promise<Item | undefined>;
  /** Every item found among `itemKeys`, in no particular order; missing keys are left out. */
  batchGet(itemKeys: ItemKey[], options?: ReadOptions): Promise<Item[]>;
  query(input: QueryInput): Promise<QueryPage>;
  /** A wallet with its creator shards summed in; a user who never recharged has zeros. */
  readWallet(userId: string, options?: ReadOptions): Promise<Wallet>;
  readCreatorBalance(userId: string, options?: ReadOptions): Promise<CreatorBalance>;
  /** One page of a user's entries, newest first; `cursor` is a previous page's `nextCursor`. */
  listEntries(userId: string, options: { limit: number; cursor?: string; creatorShards: number }): Promise<EntryPage>;
}
