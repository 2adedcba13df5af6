import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { RATE_PREFIX } from '../../shared/adapters/dynamo/keys';
import type { TableDefinition } from '../../shared/adapters/dynamo/schema';
import { type Access, effectiveAccess, type QueueName, queueUrlEnvVar } from '../routes';
import type { AppFunction } from './app-function';

/** A table and its definition in the one schema (for its index names). */
export interface BindableTable {
  table: ITable;
  definition: TableDefinition;
}

/** The stateful resources a function can be bound to. */
export interface BindableResources {
  ledger: BindableTable;
  connections: BindableTable;
  queues: ReadonlyMap<QueueName, IQueue>;
  stripeSecret: ISecret;
  /** The stage whose @connections API functions post to. */
  webSocketStage: WebSocketStage;
}

/**
 * The DynamoDB actions the ledger store and connections store use (shared/adapters/dynamo),
 * and no more: no Scan, no DescribeTable, no stream reads. A transaction needs the action of
 * each of its items (Put/Update/Delete/ConditionCheckItem), not an action of its own.
 */
export const TABLE_READ_ACTIONS = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'] as const;
export const TABLE_WRITE_ACTIONS = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem'] as const;
/**
 * Deleting is granted only on the tables whose code deletes: the connections store forgets a
 * closed or gone connection (DeleteItem). Nothing deletes from the ledger (entries are immutable,
 * expiry is TTL's job), and no code uses BatchWriteItem anywhere.
 */
export const DELETE_ACTIONS = ['dynamodb:DeleteItem'] as const;
export const TABLES_WITH_DELETES: ReadonlySet<TableDefinition['envVar']> = new Set(['CONNECTIONS_TABLE']);

/** The actions a function gets on a table's base item for its access level. */
export function tableActions(envVar: TableDefinition['envVar'], level: 'read' | 'readWrite'): string[] {
  if (level === 'read') return [...TABLE_READ_ACTIONS];
  return [...TABLE_READ_ACTIONS, ...TABLE_WRITE_ACTIONS, ...(TABLES_WITH_DELETES.has(envVar) ? DELETE_ACTIONS : [])];
}
/** Only queries read an index. */
export const INDEX_ACTIONS = ['dynamodb:Query'] as const;
/** postToConnection is `POST @connections/{id}`; deleting a gone connection happens in the table. */
export const MANAGE_CONNECTIONS_ACTION = 'execute-api:ManageConnections';

/**
 * Turns a route's `access` into least-privilege grants and the environment that goes with them:
 * table read or read/write (its indexes by name, no wildcard), send to the named queues, read the
 * Stripe secret, and ManageConnections for POST on the one WebSocket stage. Nothing else.
 */
export function bindAccess(fn: AppFunction, declared: Access, resources: BindableResources): void {
  const access = effectiveAccess(declared);
  const grantee = fn.function;
  const tableGrants: Array<[BindableTable, 'read' | 'readWrite' | undefined]> = [
    [resources.ledger, access.ledger],
    [resources.connections, access.connections],
  ];
  for (const [{ table, definition }, level] of tableGrants) {
    if (level === undefined) continue;
    grantee.addToRolePolicy(
      new PolicyStatement({
        actions: tableActions(definition.envVar, level),
        resources: [table.tableArn],
      }),
    );
    if (definition.globalSecondaryIndexes.length > 0) {
      grantee.addToRolePolicy(
        new PolicyStatement({
          actions: [...INDEX_ACTIONS],
          resources: definition.globalSecondaryIndexes.map((index) => `${table.tableArn}/index/${index.indexName}`),
        }),
      );
    }
  }
  if (access.rateLimit) {
    // Only the rate-limit counters: UpdateItem on items whose partition key starts with RATE#,
    // so a function that only reads the ledger still cannot write a single coin.
    grantee.addToRolePolicy(
      new PolicyStatement({
        actions: ['dynamodb:UpdateItem'],
        resources: [resources.ledger.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${RATE_PREFIX}*`] } },
      }),
    );
  }
  if (access.ledger || access.connections || access.rateLimit) {
    // shared/config.ts reads both names together; a name grants nothing, the policy does.
    grantee.addEnvironment(resources.ledger.definition.envVar, resources.ledger.table.tableName);
    grantee.addEnvironment(resources.connections.definition.envVar, resources.connections.table.tableName);
  }

  for (const name of access.sendsTo ?? []) {
    const queue = resources.queues.get(name);
    if (!queue) throw new Error(`${fn.node.path}: sends to queue '${name}', which QUEUES does not define`);
    queue.grantSendMessages(grantee);
    grantee.addEnvironment(queueUrlEnvVar(name), queue.queueUrl);
  }

  if (access.stripe) {
    resources.stripeSecret.grantRead(grantee);
    grantee.addEnvironment('STRIPE_SECRET_ARN', resources.stripeSecret.secretArn);
  }

  if (access.postsToConnections) {
    const stage = resources.webSocketStage;
    const stack = Stack.of(stage);
    const connectionsPath = `${stage.stageName}/POST/@connections/*`;
    grantee.addToRolePolicy(
      new PolicyStatement({
        actions: [MANAGE_CONNECTIONS_ACTION],
        resources: [
          stack.formatArn({ service: 'execute-api', resource: stage.api.apiId, resourceName: connectionsPath }),
        ],
      }),
    );
    grantee.addEnvironment('WS_MANAGEMENT_ENDPOINT', stage.callbackUrl);
    const apiLogicalId = stack.getLogicalId(stage.api.node.defaultChild as CfnElement);
    Validations.of(fn.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${apiLogicalId}>/${connectionsPath}]`,
      reason:
        'Connection ids exist only at run time; the grant is POST (postToConnection) on the @connections API of this one WebSocket stage.',
    });
  }
}
