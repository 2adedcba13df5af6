import { ConditionalCheckFailedException, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { tablesConfig, webSocketLimitsConfig } from '../../config';
import { dynamoClient, perConfiguredValue } from '../clients';
import type { DynamoSend } from './ledger-store';
import { RoomCounters } from './room-counters';
import { UserConnections, type ConnectionCaps } from './user-connections';

/**
 * Which stream a WebSocket connection watches: read by `sendGift` (the gift goes to the stream
 * the connection is on) and changed by `join`. Kept apart from DynamoConnectionsStore, which serves
 * $connect/$disconnect and the fan-out indexes.
 */
export class ConnectionStreams {
  private readonly rooms: RoomCounters;

  constructor(
    private readonly client: DynamoSend,
    readonly tableName: string,
  ) {
    this.rooms = new RoomCounters(client, tableName);
  }

  /** The connection's stream, or undefined when it has none or is not known (any more). */
  async streamOf(connectionId: string): Promise<string | undefined> {
    const result = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: marshall({ connectionId }),
        ProjectionExpression: 'streamId',
        ConsistentRead: true,
      }),
    );
    const streamId = result.Item ? unmarshall(result.Item).streamId : undefined;
    return typeof streamId === 'string' && streamId !== '' ? streamId : undefined;
  }

  /**
   * Moves the connection to another stream (the byStream index follows). Conditional on the
   * record existing, so a join racing $disconnect cannot resurrect a closed connection.
   * Returns false when the connection is not known.
   */
  async moveToStream(connectionId: string, streamId: string): Promise<boolean> {
    try {
      const answer = await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: marshall({ connectionId }),
          UpdateExpression: 'SET streamId = :streamId',
          ConditionExpression: 'attribute_exists(connectionId)',
          ExpressionAttributeValues: marshall({ ':streamId': streamId }),
          ReturnValues: 'UPDATED_OLD',
        }),
      );
      // The viewer leaves one room's count and joins the other's.
      const previous = answer.Attributes ? unmarshall(answer.Attributes).streamId : undefined;
      if (previous !== streamId) {
        if (typeof previous === 'string' && previous !== '') await this.rooms.adjust(previous, connectionId, -1);
        await this.rooms.adjust(streamId, connectionId, 1);
      }
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
  /**
   * Takes the connection off `streamId` (the fan-out index drops it) when it is still there: the
   * same user's newer connection took the stream over (UserConnections). It stays open for wallet
   * pushes and may `join` again.
   */
  async leaveStream(connectionId: string, streamId: string): Promise<void> {
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: marshall({ connectionId }),
          UpdateExpression: 'REMOVE streamId',
          ConditionExpression: 'streamId = :streamId',
          ExpressionAttributeValues: marshall({ ':streamId': streamId }),
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      return;
    }
    // Its $disconnect will find no stream to leave: the room's count drops now.
    await this.rooms.adjust(streamId, connectionId, -1);
  }
}

export const connectionStreams: () => ConnectionStreams = perConfiguredValue(
  () => tablesConfig().CONNECTIONS_TABLE,
  (table) => new ConnectionStreams(dynamoClient(), table),
);

export const userConnections: () => UserConnections = perConfiguredValue(
  () => tablesConfig().CONNECTIONS_TABLE,
  (table) => new UserConnections(dynamoClient(), table),
);

/** The caps from configuration (WS_MAX_CONNECTIONS_PER_USER, WS_MAX_CONNECTIONS_PER_USER_PER_STREAM). */
export function connectionCaps(): ConnectionCaps {
  const config = webSocketLimitsConfig();
  return {
    perUser: config.WS_MAX_CONNECTIONS_PER_USER,
    perUserPerStream: config.WS_MAX_CONNECTIONS_PER_USER_PER_STREAM,
  };
}
