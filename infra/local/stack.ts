import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { join } from 'node:path';
import { ensureTable } from '../../shared/adapters/dynamo/create-tables';
import { TABLES } from '../../shared/adapters/dynamo/schema';
import { resetConfigForTests } from '../../shared/config';
import { resetJwksForTests } from '../../shared/auth/jwt';
import { startDynamoDbLocal, type LocalDynamoDb } from './dynamodb';
import { startGateway, type LocalGateway, type StaticRoute } from './gateway';
import { ensureIssuerKey, LOCAL_AUDIENCE } from './issuer';
import { freePort } from './ports';

/** The local issuer's name; fixed, so tokens outlive a restart on other ports. */
export const LOCAL_ISSUER = 'https://issuer.local.live-gifting';

export interface LocalStackOptions {
  /** Keeps DynamoDB's data and the stand-ins' state here; without it, DynamoDB runs in memory. */
  dataDir: string;
  /** Reuse a running DynamoDB Local (the tests share one JVM); otherwise one is started. */
  dynamoEndpoint?: string;
  /** Keep DynamoDB's data on disk under dataDir (npm start) or in memory (tests). */
  persistDynamo: boolean;
  httpPort: number;
  wsPort: number;
  /** Table names are `<prefix>Ledger` and `<prefix>Connections`. */
  tablePrefix?: string;
  /** Extra environment for the functions (configuration overrides). */
  env?: Record<string, string>;
}

export interface LocalStack {
  httpUrl: string;
  wsUrl: string;
  dynamoEndpoint: string;
  tableNames: { ledger: string; connections: string };
  gateway: LocalGateway;
  stop(): Promise<void>;
}

/**
 * The whole system on one machine: DynamoDB Local, the local gateway running the route table's
 * handlers in-process, and the local issuer. Handlers read their configuration from the
 * environment, exactly as on Lambda; this function sets it.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const stoppers: Array<() => Promise<void>> = [];
  let ready = false;
  try {
    let dynamo: LocalDynamoDb | undefined;
    let dynamoEndpoint = options.dynamoEndpoint;
    if (dynamoEndpoint === undefined) {
      dynamo = await startDynamoDbLocal({
        port: Number(process.env.LOCAL_DYNAMODB_PORT ?? (await freePort())),
        ...(options.persistDynamo && { dataDir: join(options.dataDir, 'dynamodb') }),
      });
      dynamoEndpoint = dynamo.endpoint;
      const started = dynamo;
      stoppers.push(() => started.stop());
    }

    const keyFile = join(options.dataDir, 'issuer', 'key.json');
    const { publicJwk } = await ensureIssuerKey(keyFile);
    const staticRoutes: StaticRoute[] = [
      { path: '/.well-known/jwks.json', contentType: 'application/json', body: () => JSON.stringify({ keys: [publicJwk] }) },
    ];
    const gateway = await startGateway({ httpPort: options.httpPort, wsPort: options.wsPort, staticRoutes, isReady: () => ready });
    stoppers.push(() => gateway.stop());

    const prefix = options.tablePrefix ?? 'local-';
    const tableNames = { ledger: `${prefix}Ledger`, connections: `${prefix}Connections` };
    Object.assign(process.env, {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      DYNAMODB_ENDPOINT: dynamoEndpoint,
      LEDGER_TABLE: tableNames.ledger,
      CONNECTIONS_TABLE: tableNames.connections,
      JWT_ISSUER: LOCAL_ISSUER,
      JWT_AUDIENCE: LOCAL_AUDIENCE,
      JWT_JWKS_URL: `${gateway.httpUrl}/.well-known/jwks.json`,
      LOCAL_STACK: 'true',
      LOCAL_ISSUER_KEY_FILE: keyFile,
      WS_MANAGEMENT_ENDPOINT: gateway.managementEndpoint,
      ...options.env,
    });
    resetConfigForTests();
    resetJwksForTests();

    const client = new DynamoDBClient({ endpoint: dynamoEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    for (const table of TABLES) {
      await ensureTable(client, table, table.envVar === 'LEDGER_TABLE' ? tableNames.ledger : tableNames.connections);
    }
    client.destroy();

    ready = true;
    return {
      httpUrl: gateway.httpUrl,
      wsUrl: gateway.wsUrl,
      dynamoEndpoint,
      tableNames,
      gateway,
      async stop() {
        for (const stop of stoppers.reverse()) await stop();
      },
    };
  } catch (error) {
    for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
    throw error;
  }
}
