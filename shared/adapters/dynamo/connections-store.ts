import { DeleteItemCommand, PutItemCommand, QueryCommand, type AttributeValue, type QueryCommandOutput } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoSend } from './ledger-store';

/** API Gateway closes every WebSocket connection after 2 hours; records live a little longer. */
export const CONNECTION_MAX_AGE_SECONDS = 2 * 60 * 60;
export const CONNECTION_TTL_SECONDS = CONNECTION_MAX_AGE_SECONDS + 10 * 60;
/** Connections read per index page during fan-out. */
export const CONNECTIONS_PAGE_SIZE = 1000;

export interface ConnectionRecord {
  connectionId: string;
  userId: string;
  streamId?: string;
  connectedAt: string;
}

/** Open WebSocket connections, found by stream or by user through their indexes (never a Scan). */
export class ConnectionsStore {
  constructor(
    private readonly client: DynamoSend,
    readonly tableName: string,
  ) {}

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
  }

  async remove(connectionId: string): Promise<void> {
    await this.client.send(new DeleteItemCommand({ TableName: this.tableName, Key: marshall({ connectionId }) }));
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

  async countStreamViewers(streamId: string): Promise<number> {
    let count = 0;
    for await (const page of this.pages('byStream', 'streamId', streamId)) count += page.length;
    return count;
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
