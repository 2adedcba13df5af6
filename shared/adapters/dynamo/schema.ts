/**
 * The one definition of every DynamoDB table and index. The CDK stateful stack and the local
 * stack (infra/local) both build their tables from it, so they cannot drift.
 */
export type AttributeType = 'S' | 'N';

export interface KeyAttribute {
  name: string;
  type: AttributeType;
}

export interface IndexDefinition {
  indexName: string;
  partitionKey: KeyAttribute;
  sortKey?: KeyAttribute;
  /** KEYS_ONLY keeps index writes small; ALL saves a read where the reader needs the item. */
  projection: 'ALL' | 'KEYS_ONLY';
}

export interface TableDefinition {
  /** CDK construct id; the physical name is generated (no hard-coded names). */
  logicalName: string;
  /** The environment variable that carries the physical name to the functions. */
  envVar: 'LEDGER_TABLE' | 'CONNECTIONS_TABLE';
  partitionKey: KeyAttribute;
  sortKey?: KeyAttribute;
  timeToLiveAttribute: string;
  globalSecondaryIndexes: IndexDefinition[];
  /** Holds money: deletion protection and RETAIN on AWS. */
  holdsMoney: boolean;
}

/** The ledger: wallets, entries, recharges, payouts, streams, gifts and idempotency records. */
export const LEDGER_TABLE: TableDefinition = {
  logicalName: 'Ledger',
  envVar: 'LEDGER_TABLE',
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  timeToLiveAttribute: 'expiresAt',
  globalSecondaryIndexes: [
    {
      // Sparse work lists: live streams, open payouts, pending recharges, gifts not yet
      // broadcast. An item leaves the index by removing its statusPk.
      indexName: 'byStatus',
      partitionKey: { name: 'statusPk', type: 'S' },
      sortKey: { name: 'statusSk', type: 'S' },
      projection: 'ALL',
    },
    {
      // Per-stream leaderboard shards, ordered by coins gifted.
      indexName: 'leaderboard',
      partitionKey: { name: 'lbPk', type: 'S' },
      sortKey: { name: 'lbCoins', type: 'N' },
      projection: 'ALL',
    },
  ],
  holdsMoney: true,
};

/** Open WebSocket connections, found by stream (fan-out) and by user (wallet pushes). */
export const CONNECTIONS_TABLE: TableDefinition = {
  logicalName: 'Connections',
  envVar: 'CONNECTIONS_TABLE',
  partitionKey: { name: 'connectionId', type: 'S' },
  timeToLiveAttribute: 'expiresAt',
  globalSecondaryIndexes: [
    {
      indexName: 'byStream',
      partitionKey: { name: 'streamId', type: 'S' },
      sortKey: { name: 'connectionId', type: 'S' },
      projection: 'KEYS_ONLY',
    },
    {
      indexName: 'byUser',
      partitionKey: { name: 'userId', type: 'S' },
      sortKey: { name: 'connectionId', type: 'S' },
      projection: 'KEYS_ONLY',
    },
  ],
  holdsMoney: false,
};

export const TABLES: readonly TableDefinition[] = [LEDGER_TABLE, CONNECTIONS_TABLE];
