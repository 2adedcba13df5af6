import {
  BatchGetItemCommand,
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
  type BatchGetItemCommandOutput,
  type DynamoDBClient,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { randomUUID } from 'node:crypto';
import { InvariantViolation, TransientDependencyError } from '../../domain/errors';
import { emptyWallet, type Wallet } from '../../domain/ledger';
import { retryWithBackoff, type RetryPolicy } from '../../domain/retry';
import { unreachable } from '../../domain/unreachable';
import {
  MAX_TRANSACTION_ITEMS,
  type Condition,
  type ConditionFailure,
  type CreatorBalance,
  type EntryPage,
  type Item,
  type ItemKey,
  type LedgerStore,
  type PageKey,
  type QueryInput,
  type QueryPage,
  type ReadOptions,
  type UpdateSpec,
  type WriteOp,
} from '../../ports/ledger-store';
import { entryFromItem, walletFromItem, wholeNumber } from './items';
import { ENTRY_PREFIX, ENTRY_PREFIX_END, keys } from './keys';

/** BatchGetItem reads at most 100 keys per call. */
export const MAX_BATCH_GET_KEYS = 100;
/** A creator's balance read is taken again when a payout changed it meanwhile, at most this often. */
export const MAX_SNAPSHOT_ATTEMPTS = 5;
/** The largest page a client may ask for on a list route. */
export const MAX_PAGE_SIZE = 100;

/**
 * Retrying a cancelled transaction is safe because every money transaction carries its own
 * once-only guard (idempotency record, event marker, conditional status) and a ClientRequestToken
 * that DynamoDB remembers for 10 minutes.
 */
export const TRANSACTION_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 20, maxDelayMs: 500 };

export type DynamoSend = Pick<DynamoDBClient, 'send'>;

const RETRYABLE_REASONS = new Set(['TransactionConflict', 'ThrottlingError', 'ProvisionedThroughputExceeded']);
const RETRYABLE_ERROR_NAMES = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'InternalServerError',
  'TimeoutError',
  'TransactionInProgressException',
]);

/** Raised inside the retry loop when a cancellation is worth another attempt. */
class RetryableCancellation extends Error {}

export function isRetryableDynamoError(error: unknown): boolean {
  if (error instanceof RetryableCancellation) return true;
  return error instanceof Error && RETRYABLE_ERROR_NAMES.has(error.name);
}

/**
 * The ledger on DynamoDB: typed reads and the one transactional write path every money move uses.
 * Ops are plain data until `transactWrite` turns them into TransactWriteItems.
 */
export class DynamoLedgerStore implements LedgerStore {
  constructor(
    private readonly client: DynamoSend,
    readonly tableName: string,
    private readonly retry: RetryPolicy = TRANSACTION_RETRY,
  ) {}

  put(label: string, item: Item, condition?: Condition, onConditionFailed?: ConditionFailure): WriteOp {
    return {
      label,
      request: { kind: 'put', item, ...(condition && { condition }) },
      ...(onConditionFailed && { onConditionFailed }),
    };
  }

  update(label: string, key: ItemKey, update: UpdateSpec, onConditionFailed?: ConditionFailure): WriteOp {
    return { label, request: { kind: 'update', key, update }, ...(onConditionFailed && { onConditionFailed }) };
  }

  conditionCheck(label: string, key: ItemKey, condition: Condition, onConditionFailed: ConditionFailure): WriteOp {
    return { label, request: { kind: 'conditionCheck', key, condition }, onConditionFailed };
  }

  /** The TransactWriteItem an op becomes on this table; every condition returns the old item, for its error. */
  toTransactItem(op: WriteOp): TransactWriteItem {
    const request = op.request;
    switch (request.kind) {
      case 'put': {
        const { condition } = request;
        return {
          Put: {
            TableName: this.tableName,
            Item: marshall(request.item, { removeUndefinedValues: true }),
            ...(condition && {
              ConditionExpression: condition.expression,
              ...(condition.values && {
                ExpressionAttributeValues: marshall(condition.values, { removeUndefinedValues: true }),
              }),
              ...(condition.names && { ExpressionAttributeNames: condition.names }),
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            }),
          },
        };
      }
      case 'update': {
        const { update } = request;
        const values =
          update.values && Object.keys(update.values).length > 0
            ? marshall(update.values, { removeUndefinedValues: true })
            : undefined;
        return {
          Update: {
            TableName: this.tableName,
            Key: marshall(request.key),
            UpdateExpression: update.expression,
            ...(update.condition && {
              ConditionExpression: update.condition,
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
            }),
            ...(values && { ExpressionAttributeValues: values }),
            ...(update.names && { ExpressionAttributeNames: update.names }),
          },
        };
      }
      case 'conditionCheck': {
        const { condition } = request;
        return {
          ConditionCheck: {
            TableName: this.tableName,
            Key: marshall(request.key),
            ConditionExpression: condition.expression,
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            ...(condition.values && { ExpressionAttributeValues: marshall(condition.values) }),
            ...(condition.names && { ExpressionAttributeNames: condition.names }),
          },
        };
      }
      default:
        return unreachable(request, 'write request');
    }
  }

  /**
   * Applies every op or none. A failed condition becomes the error its op names (the first one,
   * in op order); conflicts and throttling are retried with backoff under one ClientRequestToken,
   * so a retry after a lost answer cannot apply the transaction twice.
   */
  async transactWrite(ops: WriteOp[], options: { clientRequestToken?: string } = {}): Promise<void> {
    if (ops.length === 0) return;
    if (ops.length > MAX_TRANSACTION_ITEMS) {
      throw new InvariantViolation(`a transaction holds at most ${MAX_TRANSACTION_ITEMS} items, got ${ops.length}`);
    }
    const clientRequestToken = options.clientRequestToken ?? randomUUID();
    const transactItems = ops.map((op) => this.toTransactItem(op));
    await retryWithBackoff(
      async () => {
        try {
          await this.client.send(
            new TransactWriteItemsCommand({
              TransactItems: transactItems,
              ClientRequestToken: clientRequestToken,
            }),
          );
        } catch (error) {
          if (!(error instanceof TransactionCanceledException)) throw error;
          const reasons = error.CancellationReasons ?? [];
          for (const [index, reason] of reasons.entries()) {
            if (reason.Code !== 'ConditionalCheckFailed') continue;
            const op = ops[index];
            const oldItem = reason.Item ? unmarshall(reason.Item) : undefined;
            if (op?.onConditionFailed) throw op.onConditionFailed(oldItem);
            throw new InvariantViolation(`condition failed on '${op?.label ?? index}' with no mapping`, {
              cause: error,
            });
          }
          if (reasons.some((reason) => reason.Code !== undefined && RETRYABLE_REASONS.has(reason.Code))) {
            throw new RetryableCancellation('transaction conflict or throttling', { cause: error });
          }
          throw error;
        }
      },
      this.retry,
      isRetryableDynamoError,
    ).catch((error: unknown) => {
      if (error instanceof RetryableCancellation || isRetryableDynamoError(error)) {
        throw new TransientDependencyError('the ledger is busy; try again', { cause: error });
      }
      throw error;
    });
  }

  async writeOne(op: WriteOp): Promise<void> {
    const { Put: put, Update: update } = this.toTransactItem(op);
    if (!put && !update)
      throw new InvariantViolation(`'${op.label}' is a condition check: only a transaction carries one`);
    const send = async () => {
      if (put) await this.client.send(new PutItemCommand(put));
      else if (update) await this.client.send(new UpdateItemCommand(update));
    };
    await retryWithBackoff(send, this.retry, isRetryableDynamoError).catch((error: unknown) => {
      if (error instanceof ConditionalCheckFailedException) {
        const oldItem = error.Item ? unmarshall(error.Item) : undefined;
        if (op.onConditionFailed) throw op.onConditionFailed(oldItem);
        throw new InvariantViolation(`condition failed on '${op.label}' with no mapping`, { cause: error });
      }
      if (isRetryableDynamoError(error))
        throw new TransientDependencyError('the ledger is busy; try again', { cause: error });
      throw error;
    });
  }

  async getItem(key: ItemKey, options: ReadOptions = {}): Promise<Item | undefined> {
    const result = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: marshall(key),
        ConsistentRead: options.consistent ?? false,
      }),
    );
    return result.Item ? unmarshall(result.Item) : undefined;
  }

  async batchGet(itemKeys: ItemKey[], options: ReadOptions = {}): Promise<Item[]> {
    const found: Item[] = [];
    for (let start = 0; start < itemKeys.length; start += MAX_BATCH_GET_KEYS) {
      let pending: Record<string, AttributeValue>[] | undefined = itemKeys
        .slice(start, start + MAX_BATCH_GET_KEYS)
        .map((key) => marshall(key));
      // BatchGetItem may return some keys unprocessed under load: ask again, a bounded number of times.
      for (let attempt = 0; pending && pending.length > 0; attempt += 1) {
        if (attempt >= TRANSACTION_RETRY.maxAttempts)
          throw new TransientDependencyError('batch read kept leaving keys unprocessed');
        const result: BatchGetItemCommandOutput = await this.client.send(
          new BatchGetItemCommand({
            RequestItems: { [this.tableName]: { Keys: pending, ConsistentRead: options.consistent ?? false } },
          }),
        );
        for (const item of result.Responses?.[this.tableName] ?? []) found.push(unmarshall(item));
        pending = result.UnprocessedKeys?.[this.tableName]?.Keys;
        // Full jitter (as retryWithBackoff), so callers throttled together do not retry in step.
        if (pending && pending.length > 0) {
          const ceiling = Math.min(TRANSACTION_RETRY.maxDelayMs, TRANSACTION_RETRY.baseDelayMs * 2 ** attempt);
          await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * ceiling)));
        }
      }
    }
    return found;
  }

  async query(input: QueryInput): Promise<QueryPage> {
    const result = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: input.keyCondition,
        ExpressionAttributeValues: marshall(input.values),
        ...(input.names && { ExpressionAttributeNames: input.names }),
        ...(input.indexName && { IndexName: input.indexName }),
        ...(input.limit !== undefined && { Limit: input.limit }),
        ...(input.filter && { FilterExpression: input.filter }),
        ...(input.exclusiveStartKey && { ExclusiveStartKey: marshall(input.exclusiveStartKey) }),
        ScanIndexForward: input.ascending ?? true,
        ConsistentRead: input.consistent ?? false,
      }),
    );
    return {
      items: (result.Items ?? []).map((item) => unmarshall(item)),
      ...(result.LastEvaluatedKey && { lastEvaluatedKey: pageKeyFrom(result.LastEvaluatedKey) }),
    };
  }

  /** A wallet with its creator shards summed in; a user who never recharged has zeros. */
  async readWallet(userId: string, options: ReadOptions = {}): Promise<Wallet> {
    return (await this.readCreatorBalance(userId, options)).wallet;
  }

  /**
   * One consistent state of a wallet and its creator shards, without a transaction (on AWS a
   * TransactGetItems over a hot creator's shards is nearly always cancelled by the gifts' own
   * transactions). Shards only ever grow; a payout folds them by raising the main item's
   * `shardDiamondsFolded` (see payouts), so available diamonds are
   *   main.diamonds + sum(shard.diamonds) - main.shardDiamondsFolded
   * and a fold changes no read. What a payout or its settlement changes on the main item bumps
   * `diamondsVersion`: the main item is read before and after the shards, and the read is taken
   * again if it moved in between. A creator's reads are strongly consistent: a stale shard could
   * read below what was already folded.
   */
  async readCreatorBalance(userId: string, options: ReadOptions = {}): Promise<CreatorBalance> {
    for (let attempt = 0; attempt < MAX_SNAPSHOT_ATTEMPTS; attempt += 1) {
      // After a first attempt that moved (or read a stale main item), every read is strongly consistent.
      const main = await this.getItem(keys.wallet(userId), attempt === 0 ? options : { consistent: true });
      const wallet = main ? walletFromItem(userId, main) : emptyWallet(userId);
      const folded = wholeNumber(main?.shardDiamondsFolded, 'shardDiamondsFolded');
      const version = wholeNumber(main?.diamondsVersion, 'diamondsVersion');
      if (wallet.creatorShards === 0)
        return {
          wallet,
          mainDiamonds: wallet.diamonds,
          shardCredits: 0,
          shardDiamondsFolded: folded,
          diamondsVersion: version,
        };
      const shardKeys = Array.from({ length: wallet.creatorShards }, (_, shard) => keys.walletShard(userId, shard));
      let shardCredits = 0;
      for (const shard of await this.batchGet(shardKeys, { consistent: true }))
        shardCredits += wholeNumber(shard.diamonds, 'shard.diamonds');
      const after = await this.getItem(keys.wallet(userId), { consistent: true });
      // Moved meanwhile, or a stale first read saw fewer shards than a stream since raised it to.
      if (
        wholeNumber(after?.diamondsVersion, 'diamondsVersion') !== version ||
        wholeNumber(after?.creatorShards, 'creatorShards') !== wallet.creatorShards
      )
        continue;
      const mainDiamonds = wallet.diamonds;
      wallet.diamonds = mainDiamonds + shardCredits - folded;
      if (wallet.diamonds < 0)
        throw new InvariantViolation(
          `wallet ${userId}: folded ${folded} diamonds, more than its shards ever held (${shardCredits})`,
        );
      return { wallet, mainDiamonds, shardCredits, shardDiamondsFolded: folded, diamondsVersion: version };
    }
    throw new TransientDependencyError(`the balance of ${userId} kept changing while it was read`);
  }

  /**
   * One page of a user's entries, newest first. A creator's gift_received entries live on shard
   * partitions, so the page is merged from the main partition and every shard partition; the
   * cursor is the sort key of the last entry returned, which orders all of them.
   */
  async listEntries(
    userId: string,
    options: { limit: number; cursor?: string; creatorShards: number },
  ): Promise<EntryPage> {
    const partitions = [keys.wallet(userId).pk];
    for (let shard = 0; shard < options.creatorShards; shard += 1)
      partitions.push(keys.shardEntryPartition(userId, shard));
    const upper = options.cursor ?? ENTRY_PREFIX_END;
    const pages = await Promise.all(
      partitions.map((pk) =>
        this.query({
          keyCondition: 'pk = :pk AND sk BETWEEN :lower AND :upper',
          values: { ':pk': pk, ':lower': ENTRY_PREFIX, ':upper': upper },
          ascending: false,
          // One extra to know whether a next page exists, and one more because BETWEEN includes
          // the cursor itself, which the previous page already returned.
          limit: options.limit + (options.cursor === undefined ? 1 : 2),
        }),
      ),
    );
    const merged = pages
      .flatMap((page) => page.items)
      .filter((item) => typeof item.sk === 'string' && item.sk < upper)
      .sort((a, b) => (String(b.sk) < String(a.sk) ? -1 : String(b.sk) > String(a.sk) ? 1 : 0));
    const pageItems = merged.slice(0, options.limit);
    const last = pageItems[pageItems.length - 1];
    const nextCursor = merged.length > options.limit && last ? String(last.sk) : null;
    return { entries: pageItems.map(entryFromItem), nextCursor };
  }
}

/**
 * A LastEvaluatedKey as our own PageKey. The ledger's key attributes (table and indexes) are
 * strings or numbers (schema.ts), so anything else is a broken table, not a page.
 */
function pageKeyFrom(lastEvaluatedKey: Record<string, AttributeValue>): PageKey {
  const pageKey: Record<string, string | number> = {};
  for (const [name, value] of Object.entries(unmarshall(lastEvaluatedKey))) {
    if (typeof value !== 'string' && typeof value !== 'number')
      throw new InvariantViolation(`page key attribute ${name} is neither a string nor a number`);
    pageKey[name] = value;
  }
  return pageKey;
}
