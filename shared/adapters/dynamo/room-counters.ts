import { BatchGetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { shardFor } from './keys';
import type { DynamoSend } from './ledger-store';

/**
 * A room's viewer count, kept as a counter instead of counted by paging the connections index
 * (which cost ~780 read units per call at 100,000 viewers). $connect adds one, $disconnect (or a
 * GoneException) takes one away, `join` moves one. The counter is spread over a few items so
 * that fast connects stay far under DynamoDB's 1,000 writes a second per key; reading it is one
 * BatchGetItem of those items. It lives in the connections table, under keys no connection id
 * can take (`ROOM#...`), and carries neither `streamId` nor `userId`, so no index lists it.
 */

/**
 * API Gateway accepts at most 500 new connections a second per account; with as many
 * disconnects that is 1,000 counter writes a second, 500 per item over two items: within
 * DynamoDB's 1,000 per key, and two eventually consistent item reads are 1 read unit.
 */
export const VIEWER_COUNTER_SHARDS = 2;

export function viewerCounterKey(streamId: string, shard: number): { connectionId: string } {
  return { connectionId: `ROOM#${streamId}#${shard}` };
}

export class RoomCounters {
  constructor(
    private readonly client: DynamoSend,
    readonly tableName: string,
  ) {}

  /** Adds `delta` viewers to the room, on the shard the connection id picks (the same on the way in and out). */
  async adjust(streamId: string, connectionId: string, delta: number): Promise<void> {
    await this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: marshall(viewerCounterKey(streamId, shardFor(connectionId, VIEWER_COUNTER_SHARDS))),
        UpdateExpression: 'ADD viewers :delta',
        ExpressionAttributeValues: marshall({ ':delta': delta }),
      }),
    );
  }

  /**
   * The room's viewers now (eventually consistent). Never below 0: a connection that expired
   * by TTL without its $disconnect was never subtracted, one whose disconnect ran twice once more.
   */
  async viewers(streamId: string): Promise<number> {
    const keys = Array.from({ length: VIEWER_COUNTER_SHARDS }, (_, shard) =>
      marshall(viewerCounterKey(streamId, shard)),
    );
    const answer = await this.client.send(
      new BatchGetItemCommand({ RequestItems: { [this.tableName]: { Keys: keys } } }),
    );
    const items = answer.Responses?.[this.tableName] ?? [];
    const total = items
      .map((item) => unmarshall(item))
      .reduce((sum, item) => sum + (typeof item.viewers === 'number' ? item.viewers : 0), 0);
    return Math.max(0, total);
  }
}
