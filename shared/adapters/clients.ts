import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { awsConfig, tablesConfig } from '../config';
import type { LedgerStore } from '../ports/ledger-store';
import { DynamoLedgerStore } from './dynamo/ledger-store';
import { DynamoConnectionsStore } from './dynamo/connections-store';
import { ApiGatewayConnectionPoster, type ConnectionPoster } from './connections-api';
import { instrumentAwsClient } from '../observability/tracing';

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

let ledger: LedgerStore | undefined;
export function ledgerStore(): LedgerStore {
  ledger ??= new DynamoLedgerStore(dynamoClient(), tablesConfig().LEDGER_TABLE);
  return ledger;
}

let connections: DynamoConnectionsStore | undefined;
export function connectionsStore(): DynamoConnectionsStore {
  connections ??= new DynamoConnectionsStore(dynamoClient(), tablesConfig().CONNECTIONS_TABLE);
  return connections;
}

let poster: ConnectionPoster | undefined;
export function connectionPoster(): ConnectionPoster {
  poster ??= new ApiGatewayConnectionPoster(connectionsStore());
  return poster;
}
