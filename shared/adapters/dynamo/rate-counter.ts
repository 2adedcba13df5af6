import { ConditionalCheckFailedException, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { keys } from './keys';
import type { DynamoSend } from './ledger-store';

/** One window of one user's requests of one class, as the shared counter sees it. */
export interface RateWindow {
  userId: string;
  requestClass: string;
  /** The window's number: epoch seconds / window length, the same on every instance. */
  window: number;
  /** Epoch seconds after which TTL may delete the counter. */
  expiresAt: number;
}

/** Adds requests to a user's window; `undefined` when the window had already reached the ceiling. */
export interface SharedRateCounter {
  add(window: RateWindow, count: number, ceiling: number): Promise<number | undefined>;
}

/**
 * The cross-instance counter: one conditional UpdateItem (ADD) per call on a small item of the
 * ledger table, `RATE#<user>#<class>#<window>`, 1 write unit. The condition refuses the add once
 * the window holds the ceiling, so a refused call writes nothing more.
 */
export class DynamoSharedRateCounter implements SharedRateCounter {
  constructor(
    private readonly client: DynamoSend,
    readonly tableName: string,
  ) {}

  async add(window: RateWindow, count: number, ceiling: number): Promise<number | undefined> {
    try {
      const result = await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: marshall(keys.rateWindow(window.userId, window.requestClass, window.window)),
          UpdateExpression: 'ADD requests :count SET expiresAt = if_not_exists(expiresAt, :expiresAt)',
          ConditionExpression: 'attribute_not_exists(requests) OR requests < :ceiling',
          ExpressionAttributeValues: marshall({ ':count': count, ':ceiling': ceiling, ':expiresAt': window.expiresAt }),
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      const total = result.Attributes ? unmarshall(result.Attributes).requests : undefined;
      return typeof total === 'number' ? total : count;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return undefined;
      throw error;
    }
  }
}
