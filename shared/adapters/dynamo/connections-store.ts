import {
  DeleteItemCommand,
  PutItemCommand,
  QueryCommand,
  type AttributeValue,
  type QueryCommandOutput,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { ConnectionsStore } from '../../ports/connections-store';
import type { DynamoSend } from './ledger-store';
import { RoomCounters } from './room-counters';

/** API Gateway closes every WebSocket connection after 2 hours; records live a little longer. */
export const CONNECTION_MAX_AGE_SECONDS = 2 * 60 * 60;
export const CONNECTION_TTL_SECONDS = CONNECTION_MAX_AGE_SECONDS + 10 * 60;
/**
 * A connection this young that a post finds gone may still be completing its handshake
 * (removeGone). Seconds, not milliseconds: on a loaded machine 200 viewers joining at once saw
 * handshakes finish more than 2 s after their `$connect` wrote the record, and lost viewers.
 */
export const CONNECTION_SETTLE_MS = 10_000;
/** Connections read per index page during fan-out. */
export const CONNECTIONS_PAGE_SIZE = 1000;

export interface ConnectionRecord {
  connectionId: string;
  userId: string;
  streamId?: string;
  connectedAt: string;
}

/** Open WebSocket connections, found by stream or by user through their indexes (never a Scan). */
export class DynamoConnectionsStore implements ConnectionsStore {
  /** Viewers per room, kept as counters next to the connections (room-counters.ts). */
  readonly rooms: RoomCounters;

  constructor(
    private readonly client: DynamoSend,
    readonly tableName: string,
  ) {
    this.rooms = new RoomCounters(client, tableName);
  }

  async save(connection: ConnectionRecord, now: Date): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: marshall(
          { ...connection, expiresAt: Math.floor(now.getTime() / 1000) + CONNECTION_TTL_SECONDS },
          { removeUndefinedValues: true },
        ),
      }),
    );
    if (connection.streamId) await this.rooms.adjust(connection.streamId, connection.connectionId, 1);
  }

  /**
   * Forgets a connection and takes it off its room's viewer count (once: a second remove finds
   * nothing). Answers the stream it was watching, when this remove took it off that count.
   */
  async remove(connectionId: string): Promise<string | undefined> {
    return this.forget(
      new DeleteItemCommand({ TableName: this.tableName, Key: marshall({ connectionId }), ReturnValues: 'ALL_OLD' }),
    );
  }

  private async forget(command: DeleteItemCommand): Promise<string | undefined> {
    const answer = await this.client.send(command);
    const connectionId = unmarshall(command.input.Key ?? {}).connectionId as string;
    const streamId = answer.Attributes ? unmarshall(answer.Attributes).streamId : undefined;
    if (typeof streamId !== 'string' || streamId === '') return undefined;
    await this.rooms.adjust(streamId, connectionId, -1);
    return streamId;
  }

  /**
   * A post found this connection gone: forget it, unless it connected less than
   * CONNECTION_SETTLE_MS ago. Its record is written during `$connect`, before API Gateway
   * completes the handshake, so a frame posted meanwhile finds it "gone" although the viewer is
   * about to be there; removing it would leave a viewer who never gets a frame. A connection that
   * really vanished that young is removed by the next post, its `$disconnect` or the TTL.
   */
  async removeGone(connectionId: string, now: Date): Promise<string | undefined> {
    const settledBy = new Date(now.getTime() - CONNECTION_SETTLE_MS).toISOString();
    try {
      return await this.forget(
        new DeleteItemCommand({
          TableName: this.tableName,
          Key: marshall({ connectionId }),
          ConditionExpression: 'connectedAt <= :settledBy',
          ExpressionAttributeValues: marshall({ ':settledBy': settledBy }),
          ReturnValues: 'ALL_OLD',
        }),
      );
    } catch (error) {
      if (error instanceof Error && error.name === 'ConditionalCheckFailedException') return undefined;
      throw error;
    }
  }

  /** Every connection id watching a stream, page by page. */
  async *streamConnectionIds(streamId: string): AsyncGenerator<string[]> {
    yield* this.pages('byStream', 'streamId', streamId);
  }

  async userConnectionIds(userId: string): Promise<string[]> {
    const all: string[] = [];
    for await (const page of this.pages('byUser', 'userId', userId)) all.push(...page);
    return all;
  }

  /** The room's viewer counter: a couple of item reads, whatever the number of viewers. */
  async countStreamViewers(streamId: string): Promise<number> {
    return this.rooms.viewers(streamId);
  }

  private async *pages(indexName: string, attribute: string, value: string): AsyncGenerator<string[]> {
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const result: QueryCommandOutput = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: indexName,
          KeyConditionExpression: '#attribute = :value',
          ExpressionAttributeNames: { '#attribute': attribute },
          ExpressionAttributeValues: marshall({ ':value': value }),
          Limit: CONNECTIONS_PAGE_SIZE,
          ...(startKey && { ExclusiveStartKey: startKey }),
        }),
      );
      yield (result.Items ?? []).map((item) => String(unmarshall(item).connectionId));
      startKey = result.LastEvaluatedKey;
    } while (startKey);
  }
}
