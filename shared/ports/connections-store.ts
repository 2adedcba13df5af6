/**
 * The open WebSocket connections as the use cases read them: who watches a stream, which
 * connections a user has, and a room's viewer count. The DynamoDB adapter
 * (`shared/adapters/dynamo/connections-store.ts`) implements it, and also the writes that only
 * the connect and disconnect handlers make.
 */
export interface ConnectionsStore {
  /** Every connection id watching a stream, page by page. */
  streamConnectionIds(streamId: string): AsyncIterable<string[]>;
  userConnectionIds(userId: string): Promise<string[]>;
  /** The room's viewer count, as its counters hold it. */
  countStreamViewers(streamId: string): Promise<number>;
}
