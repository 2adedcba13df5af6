import {
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import * as z from 'zod';
import { keyUserId } from './keys';
import { CONNECTION_TTL_SECONDS } from './connections-store';
import type { DynamoSend } from './ledger-store';

/** Tries per $connect: creating the user's item, or pruning expired entries when full, costs one each. */
export const MAX_ADMIT_ATTEMPTS = 3;

/** The caps one user's connections live under (shared/config.ts, webSocketLimits). */
export interface ConnectionCaps {
  perUser: number;
  /** Past this many on one stream, the user's oldest connections there leave the stream. */
  perUserPerStream: number;
}

export type Admission = { admitted: true; leftStream: string[] } | { admitted: false };

/** `joinedAt`: when it came to its stream (connect or join, epoch ms); the latest arrival keeps the room. */
const entrySchema = z.object({
  connectedAt: z.number(),
  expiresAt: z.number(),
  streamId: z.string().optional(),
  joinedAt: z.number().optional(),
});
type Entry = z.infer<typeof entrySchema>;
const itemSchema = z.object({ conns: z.record(z.string(), entrySchema).default({}) });

/**
 * One item per user in the connections table, `USERCONNS#<user>`: the user's open connections
 * (id -> stream, connect time, expiry) and their number, `openCount`. $connect adds an entry and
 * 1 to the count in one conditional write (`openCount < cap`), so the cap holds under 300
 * simultaneous upgrades: the byUser index lags its table and could not count them. $disconnect
 * removes the entry and 1. An entry whose $disconnect never came is pruned once it has passed the
 * connection's maximum age (2 hours), when the user is at the cap. The item has no `userId` or
 * `streamId` attribute, so it never appears in the fan-out indexes.
 */
export class UserConnections {
  constructor(
    private readonly client: DynamoSend,
    readonly tableName: string,
  ) {}

  /**
   * Admits a connection unless the user holds `caps.perUser` live ones. On a stream, the user's
   * oldest connections there past `caps.perUserPerStream` come back in `leftStream`, already
   * taken off the stream here; the caller takes their connection records off it too.
   */
  async admit(
    userId: string,
    connectionId: string,
    streamId: string | undefined,
    caps: ConnectionCaps,
    now: Date,
  ): Promise<Admission> {
    const nowSeconds = Math.floor(now.getTime() / 1000);
    const entry: Entry = {
      connectedAt: now.getTime(),
      expiresAt: nowSeconds + CONNECTION_TTL_SECONDS,
      ...(streamId !== undefined && { streamId }),
    };
    for (let attempt = 1; attempt <= MAX_ADMIT_ATTEMPTS; attempt += 1) {
      const outcome = await this.tryAdd(userId, connectionId, entry, caps.perUser, nowSeconds);
      if (outcome === 'added') {
        return {
          admitted: true,
          leftStream:
            streamId === undefined
              ? []
              : await this.leaveOlder(userId, connectionId, streamId, caps.perUserPerStream, nowSeconds),
        };
      }
      if (outcome === 'missing') {
        await this.createItem(userId, nowSeconds);
        continue;
      }
      const expired = Object.entries(await this.read(userId)).filter(
        ([, existing]) => existing.expiresAt <= nowSeconds,
      );
      if (expired.length === 0) return { admitted: false };
      await this.prune(
        userId,
        expired.map(([id]) => id),
      );
    }
    return { admitted: false };
  }

  /** `join`: the connection now watches `streamId`; returns the user's older connections that left it. */
  async moveTo(
    userId: string,
    connectionId: string,
    streamId: string,
    caps: ConnectionCaps,
    now: Date,
  ): Promise<string[]> {
    try {
      await this.update(
        userId,
        'SET conns.#connection.streamId = :streamId, conns.#connection.joinedAt = :joinedAt',
        'attribute_exists(conns.#connection)',
        { '#connection': connectionId },
        { ':streamId': streamId, ':joinedAt': now.getTime() },
      );
    } catch (error) {
      // A connection this item does not know (it predates the item): nothing to move.
      if (!(error instanceof ConditionalCheckFailedException) && !isMissingMap(error)) throw error;
      return [];
    }
    return this.leaveOlder(userId, connectionId, streamId, caps.perUserPerStream, Math.floor(now.getTime() / 1000));
  }

  /** $disconnect: the entry and its count go; a second $disconnect finds nothing to remove. */
  async release(userId: string, connectionId: string): Promise<void> {
    try {
      await this.update(
        userId,
        'REMOVE conns.#connection ADD openCount :minusOne',
        'attribute_exists(conns.#connection)',
        { '#connection': connectionId },
        { ':minusOne': -1 },
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException) && !isMissingMap(error)) throw error;
    }
  }

  private async tryAdd(
    userId: string,
    connectionId: string,
    entry: Entry,
    cap: number,
    nowSeconds: number,
  ): Promise<'added' | 'full' | 'missing'> {
    try {
      await this.update(
        userId,
        'SET conns.#connection = :entry, expiresAt = :expiresAt ADD openCount :one',
        // No item yet: the condition holds and the SET finds no map ('missing': create it, retry).
        'attribute_not_exists(conns.#connection) AND (attribute_not_exists(openCount) OR openCount < :cap)',
        { '#connection': connectionId },
        { ':entry': entry, ':expiresAt': nowSeconds + CONNECTION_TTL_SECONDS, ':one': 1, ':cap': cap },
      );
      return 'added';
    } catch (error) {
      if (isMissingMap(error)) return 'missing';
      if (error instanceof ConditionalCheckFailedException) return 'full';
      throw error;
    }
  }

  /** The user's oldest connections on the stream beyond `keep` (never `connectionId` itself) leave it. */
  private async leaveOlder(
    userId: string,
    connectionId: string,
    streamId: string,
    keep: number,
    nowSeconds: number,
  ): Promise<string[]> {
    const onStream = Object.entries(await this.read(userId))
      .filter(([, entry]) => entry.streamId === streamId && entry.expiresAt > nowSeconds)
      .sort(
        ([idA, a], [idB, b]) => (a.joinedAt ?? a.connectedAt) - (b.joinedAt ?? b.connectedAt) || (idA < idB ? -1 : 1),
      );
    const leaving = onStream
      .slice(0, Math.max(0, onStream.length - keep))
      .map(([id]) => id)
      .filter((id) => id !== connectionId);
    const left: string[] = [];
    for (const id of leaving) {
      try {
        await this.update(
          userId,
          'REMOVE conns.#connection.streamId',
          'conns.#connection.streamId = :streamId',
          { '#connection': id },
          { ':streamId': streamId },
        );
        left.push(id);
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
    }
    return left;
  }

  private async prune(userId: string, expired: string[]): Promise<void> {
    const names = Object.fromEntries(expired.map((id, index) => [`#expired${index}`, id]));
    const paths = Object.keys(names).map((name) => `conns.${name}`);
    try {
      await this.update(
        userId,
        `REMOVE ${paths.join(', ')} ADD openCount :minus`,
        paths.map((path) => `attribute_exists(${path})`).join(' AND '),
        names,
        { ':minus': -expired.length },
      );
    } catch (error) {
      // Another $connect or $disconnect changed them first: the caller reads again.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  private async createItem(userId: string, nowSeconds: number): Promise<void> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: marshall({
            connectionId: userConnectionsKey(userId),
            conns: {},
            openCount: 0,
            expiresAt: nowSeconds + CONNECTION_TTL_SECONDS,
          }),
          ConditionExpression: 'attribute_not_exists(connectionId)',
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  private async read(userId: string): Promise<Record<string, Entry>> {
    const result = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: marshall({ connectionId: userConnectionsKey(userId) }),
        ConsistentRead: true,
      }),
    );
    return result.Item ? itemSchema.parse(unmarshall(result.Item)).conns : {};
  }

  private async update(
    userId: string,
    expression: string,
    condition: string,
    names: Record<string, string>,
    values: Record<string, unknown>,
  ): Promise<void> {
    await this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: marshall({ connectionId: userConnectionsKey(userId) }),
        UpdateExpression: expression,
        ConditionExpression: condition,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: marshall(values, { removeUndefinedValues: true }),
      }),
    );
  }
}

/** SET on a path inside a map that does not exist yet (the user's first connection) is a ValidationException. */
function isMissingMap(error: unknown): boolean {
  return error instanceof Error && error.name === 'ValidationException' && /document path/i.test(error.message);
}

/** The item's key in the connections table: API Gateway connection ids never contain '#'. */
export function userConnectionsKey(userId: string): string {
  return `USERCONNS#${keyUserId(userId)}`;
}
