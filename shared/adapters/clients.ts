import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { awsConfig, tablesConfig } from '../config';
import type { LedgerStore } from '../ports/ledger-store';
import { DynamoLedgerStore } from './dynamo/ledger-store';
import { DynamoConnectionsStore } from './dynamo/connections-store';
import { ApiGatewayConnectionPoster, type ConnectionPoster } from './connections-api';
import { instrumentAwsClient } from '../observability/tracing';
import { systemClock } from './clock';
import { newId } from './ids';

/**
 * SDK clients are built once per cold start, at first use, and reused by every invocation.
 * Locally the endpoint points at DynamoDB Local; on AWS it is left to the SDK.
 */
let dynamo: DynamoDBClient | undefined;
export function dynamoClient(): DynamoDBClient {
  if (!dynamo) {
    const config = awsConfig();
    dynamo = instrumentAwsClient(
      new DynamoDBClient({
        region: config.AWS_REGION,
        ...(config.DYNAMODB_ENDPOINT && { endpoint: config.DYNAMODB_ENDPOINT }),
        // Bounded: the SDK's standard mode retries throttling with backoff and jitter.
        maxAttempts: 3,
      }),
    );
  }
  return dynamo;
}

/**
 * A client per configured value, built at first use. Each call reads its variable again (parsed once
 * per environment, so it costs a lookup): under `npm start`, where handlers share a process, a
 * handler whose access does not grant the table fails as it would on AWS, instead of borrowing a
 * client another handler built.
 */
export function perConfiguredValue<Value, Client>(read: () => Value, build: (value: Value) => Client): () => Client {
  let built: { value: Value; client: Client } | undefined;
  return () => {
    const value = read();
    if (built?.value !== value) built = { value, client: build(value) };
    return built.client;
  };
}

export const ledgerStore: () => LedgerStore = perConfiguredValue(
  () => tablesConfig().LEDGER_TABLE,
  (table) => new DynamoLedgerStore(dynamoClient(), table),
);

export const connectionsStore: () => DynamoConnectionsStore = perConfiguredValue(
  () => tablesConfig().CONNECTIONS_TABLE,
  (table) => new DynamoConnectionsStore(dynamoClient(), table),
);

export const connectionPoster: () => ConnectionPoster = perConfiguredValue(
  connectionsStore,
  (connections) => new ApiGatewayConnectionPoster(connections),
);

/** What the use cases are given to tell time and name things: injected, so tests can fix both. */
export interface ClockAndIds {
  now: () => Date;
  newId: (prefix: string, now: Date) => string;
}

/** The ledger, the system clock and the id source: the dependencies most use cases take. */
export function ledgerDeps(): ClockAndIds & { store: LedgerStore } {
  return { store: ledgerStore(), now: () => systemClock.now(), newId };
}
