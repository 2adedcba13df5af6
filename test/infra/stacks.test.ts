import { CfnElement, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks, NagRuleCompliance, type IApplyRule } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cdkJsonContext, createApp } from '../../infra/app';
import {
  INDEX_ACTIONS,
  MANAGE_CONNECTIONS_ACTION,
  tableActions as grantedTableActions,
  TABLE_READ_ACTIONS,
} from '../../infra/constructs/access';
import type { StatefulStack } from '../../infra/stacks/stateful-stack';
import { COGNITO_CLAIM_NAMES, MIN_MAX_RECEIVE_COUNT } from '../../infra/stacks/stateful-stack';
import {
  HTTP_STAGE_THROTTLE,
  MIN_SCHEDULE_MINUTES,
  PUBLIC_ROUTE_THROTTLE,
  STRIPE_WEBHOOK_PATH,
  VISIBILITY_TO_TIMEOUT_RATIO,
  WEBSOCKET_STAGE_NAME,
  WEBSOCKET_STAGE_THROTTLE,
  type StatelessStack,
} from '../../infra/stacks/stateless-stack';
import {
  cloudHttpRoutes,
  EVENT_API_AUTHORIZER,
  effectiveAccess,
  grantedVariables,
  HTTP_ROUTES,
  QUEUE_CONSUMERS,
  QUEUES,
  queueUrlEnvVar,
  SCHEDULES,
  WEBSOCKET_AUTHORIZER,
  WEBSOCKET_ROUTES,
  isGrantVariable,
  type Access,
  type QueueName,
} from '../../infra/routes';
import { TABLES } from '../../shared/adapters/dynamo/schema';

/**
 * The synthesized templates of the default deployment (the stack's own Cognito user pool), checked
 * against the route table and the table schema, which are iterated, never copied: routes added
 * later are covered as they come. One synthesis for the whole file; bundling is skipped here
 * (bundling.test.ts bundles for real).
 */

/** A finding of the AwsSolutions pack before acknowledgments, to prove each acknowledgment is needed. */
interface RawFinding {
  id: string;
  path: string;
}
class RecordingAwsSolutionsChecks extends AwsSolutionsChecks {
  readonly findings: RawFinding[] = [];
  protected override applyRule(params: IApplyRule): void {
    const id = `AwsSolutions-${params.ruleSuffixOverride ?? params.rule.name}`;
    try {
      const result = params.rule(params.node);
      if (result === NagRuleCompliance.NON_COMPLIANT) this.findings.push({ id, path: params.node.node.path });
      if (Array.isArray(result))
        for (const finding of result) this.findings.push({ id: `${id}[${finding}]`, path: params.node.node.path });
    } catch {
      this.findings.push({ id, path: params.node.node.path });
    }
    super.applyRule(params);
  }
}

const SYNTH_TIMEOUT_MS = 180_000;
let outdir: string;
let stateful: StatefulStack;
let stateless: StatelessStack;
let statefulTemplate: Template;
let statelessTemplate: Template;
let recorder: RecordingAwsSolutionsChecks;
let acknowledgments: Array<{ path: string; id: string; reason: string }>;

beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), 'infra-stacks-'));
  const created = createApp({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] }, outdir });
  stateful = created.stateful;
  stateless = created.stateless;
  recorder = new RecordingAwsSolutionsChecks(created.app);
  Validations.of(created.app).addPlugins(recorder);
  const assembly = created.app.synth();
  statefulTemplate = Template.fromJSON(assembly.getStackByName(stateful.stackName).template);
  statelessTemplate = Template.fromJSON(assembly.getStackByName(stateless.stackName).template);
  acknowledgments = [];
  for (const construct of created.app.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>))
        acknowledgments.push({ path: construct.node.path, id, reason });
    }
  }
}, SYNTH_TIMEOUT_MS);

afterAll(() => {
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

// ---- helpers over the synthesized JSON ----

function logicalId(construct: IConstruct): string {
  const element = construct instanceof CfnElement ? construct : (construct.node.defaultChild as CfnElement);
  return Stack.of(element).getLogicalId(element);
}

/** [logical id, resource] pairs; CloudFormation JSON as aws-cdk-lib/assertions types it. */
function resources(template: Template, type: string) {
  return Object.entries(template.findResources(type));
}

function functionNamed(name: string) {
  const found = stateless.functions.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no function ${name}`);
  const id = logicalId(found.fn.function);
  const resource = statelessTemplate.findResources('AWS::Lambda::Function')[id];
  if (!resource) throw new Error(`no resource for ${name}`);
  return { id, roleId: logicalId(found.fn.role), properties: resource.Properties, fn: found.fn };
}

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}
const actionsOf = (statement: Statement): string[] =>
  Array.isArray(statement.Action) ? statement.Action : [statement.Action];
const resourceText = (statement: Statement): string => JSON.stringify(statement.Resource);

function statementsOfRole(roleLogicalId: string): Statement[] {
  const statements: Statement[] = [];
  for (const [, policy] of resources(statelessTemplate, 'AWS::IAM::Policy')) {
    if (JSON.stringify(policy.Properties.Roles).includes(`"${roleLogicalId}"`)) {
      statements.push(...(policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    }
  }
  return statements;
}

function allStatements(): Statement[] {
  const statements: Statement[] = [];
  for (const template of [statefulTemplate, statelessTemplate]) {
    for (const type of [
      'AWS::IAM::Policy',
      'AWS::IAM::ManagedPolicy',
      'AWS::SQS::QueuePolicy',
      'AWS::SNS::TopicPolicy',
      'AWS::SecretsManager::ResourcePolicy',
    ]) {
      for (const [, resource] of resources(template, type)) {
        const document = (resource.Properties.PolicyDocument ?? resource.Properties.ResourcePolicy) as
          | { Statement: Statement[] }
          | undefined;
        if (document) statements.push(...document.Statement);
      }
    }
    for (const [, role] of resources(template, 'AWS::IAM::Role')) {
      for (const policy of (role.Properties.Policies as
        | Array<{ PolicyDocument: { Statement: Statement[] } }>
        | undefined) ?? []) {
        statements.push(...policy.PolicyDocument.Statement);
      }
    }
  }
  return statements;
}

function environmentOf(name: string): Record<string, unknown> {
  const environment = functionNamed(name).properties.Environment as { Variables: Record<string, unknown> } | undefined;
  return environment?.Variables ?? {};
}

/** Every function the route table asks for, with its access. */
function expectedFunctions(): Array<{
  name: string;
  access: Access;
  kind: 'http' | 'ws' | 'authorizer' | 'consumer' | 'schedule';
}> {
  return [
    ...cloudHttpRoutes().map((route) => ({ name: route.name, access: route.access, kind: 'http' as const })),
    ...WEBSOCKET_ROUTES.map((route) => ({ name: route.name, access: route.access, kind: 'ws' as const })),
    { name: WEBSOCKET_AUTHORIZER.name, access: WEBSOCKET_AUTHORIZER.access, kind: 'authorizer' as const },
    { name: EVENT_API_AUTHORIZER.name, access: EVENT_API_AUTHORIZER.access, kind: 'authorizer' as const },
    ...QUEUE_CONSUMERS.map((consumer) => ({ name: consumer.name, access: consumer.access, kind: 'consumer' as const })),
    ...SCHEDULES.map((schedule) => ({ name: schedule.name, access: schedule.access, kind: 'schedule' as const })),
  ];
}

const httpApiId = () => logicalId(stateless.httpApi);
const webSocketApiId = () => logicalId(stateless.webSocketApi);
const tableLogicalId = (envVar: 'LEDGER_TABLE' | 'CONNECTIONS_TABLE') =>
  logicalId(envVar === 'LEDGER_TABLE' ? stateful.ledgerTable() : stateful.connectionsTable());
const queueLogicalId = (name: QueueName) => logicalId(stateful.queue(name));

// ---- HTTP API ----

describe('HTTP API', () => {
  const routeKeys = () =>
    resources(statelessTemplate, 'AWS::ApiGatewayV2::Route')
      .filter(([, route]) => JSON.stringify(route.Properties.ApiId) === JSON.stringify({ Ref: httpApiId() }))
      .map(([, route]) => route.Properties);

  test('every cloud route of the route table is a route, and nothing else is', () => {
    const expected = cloudHttpRoutes()
      .map((route) => `${route.method} ${route.path}`)
      .sort();
    expect(
      routeKeys()
        .map((route) => route.RouteKey)
        .sort(),
    ).toEqual(expected);
  });

  test('no /dev route, local issuer or payments stand-in reaches either template', () => {
    expect(HTTP_ROUTES.some((route) => route.localOnly)).toBe(true);
    for (const route of routeKeys()) expect(String(route.RouteKey)).not.toMatch(/\/dev(\/|$)/);
    const text = JSON.stringify(statefulTemplate.toJSON()) + JSON.stringify(statelessTemplate.toJSON());
    for (const localOnly of [
      '/dev/',
      'LOCAL_STACK',
      'LOCAL_ISSUER',
      'issuer.local',
      '127.0.0.1',
      'localhost',
      'STRIPE_API_HOST',
      'DYNAMODB_ENDPOINT',
      'SQS_ENDPOINT',
    ]) {
      expect(text).not.toContain(localOnly);
    }
    for (const route of HTTP_ROUTES.filter((candidate) => candidate.localOnly)) {
      expect(stateless.functions.map((fn) => fn.name)).not.toContain(route.name);
    }
  });

  test('each route invokes its own function through a payload 2.0 Lambda integration', () => {
    const integrations = statelessTemplate.findResources('AWS::ApiGatewayV2::Integration');
    for (const route of cloudHttpRoutes()) {
      const cfnRoute = routeKeys().find((candidate) => candidate.RouteKey === `${route.method} ${route.path}`);
      const integrationId = JSON.stringify(cfnRoute?.Target).match(/"Ref":"([A-Za-z0-9]+)"/)?.[1];
      const integration = integrationId ? integrations[integrationId] : undefined;
      expect(integration?.Properties.IntegrationType).toBe('AWS_PROXY');
      expect(integration?.Properties.PayloadFormatVersion).toBe('2.0');
      expect(JSON.stringify(integration?.Properties.IntegrationUri)).toContain(`"${functionNamed(route.name).id}"`);
    }
  });

  test("JWT routes use the JWT authorizer of the stack's user pool; public routes have none", () => {
    const authorizers = resources(statelessTemplate, 'AWS::ApiGatewayV2::Authorizer').filter(
      ([, authorizer]) => JSON.stringify(authorizer.Properties.ApiId) === JSON.stringify({ Ref: httpApiId() }),
    );
    expect(authorizers).toHaveLength(1);
    const [authorizerId, authorizer] = authorizers[0] ?? ['', { Properties: {} }];
    expect(authorizer.Properties.AuthorizerType).toBe('JWT');
    expect(authorizer.Properties.IdentitySource).toEqual(['$request.header.Authorization']);
    const jwt = authorizer.Properties.JwtConfiguration as { Issuer: unknown; Audience: unknown[] };
    expect(JSON.stringify(jwt.Issuer)).toContain(`${logicalId(stateful.identity.userPool as IConstruct)}ProviderURL`);
    expect(JSON.stringify(jwt.Audience)).toContain(logicalId(stateful.identity.userPoolClient as IConstruct));
    for (const route of cloudHttpRoutes()) {
      const cfnRoute = routeKeys().find((candidate) => candidate.RouteKey === `${route.method} ${route.path}`);
      if (route.auth === 'jwt') {
        expect(cfnRoute?.AuthorizationType).toBe('JWT');
        expect(cfnRoute?.AuthorizerId).toEqual({ Ref: authorizerId });
      } else {
        expect(cfnRoute?.AuthorizationType ?? 'NONE').toBe('NONE');
        expect(cfnRoute?.AuthorizerId).toBeUndefined();
      }
    }
    const webhook = cloudHttpRoutes().find((route) => route.path === STRIPE_WEBHOOK_PATH);
    if (webhook) expect(webhook.auth).toBe('none');
  });

  test('the $default stage has stage throttling, tighter limits on public routes, and JSON access logs', () => {
    const stages = resources(statelessTemplate, 'AWS::ApiGatewayV2::Stage').filter(
      ([, stage]) => JSON.stringify(stage.Properties.ApiId) === JSON.stringify({ Ref: httpApiId() }),
    );
    expect(stages).toHaveLength(1);
    const stage = stages[0]?.[1].Properties ?? {};
    expect(stage.StageName).toBe('$default');
    expect(stage.AutoDeploy).toBe(true);
    expect(stage.DefaultRouteSettings).toEqual({
      ThrottlingRateLimit: HTTP_STAGE_THROTTLE.rateLimit,
      ThrottlingBurstLimit: HTTP_STAGE_THROTTLE.burstLimit,
    });
    const publicKeys = cloudHttpRoutes()
      .filter((route) => route.auth === 'none')
      .map((route) => `${route.method} ${route.path}`);
    const routeSettings = stage.RouteSettings as Record<
      string,
      { ThrottlingRateLimit: number; ThrottlingBurstLimit: number }
    >;
    expect(Object.keys(routeSettings).sort()).toEqual(publicKeys.sort());
    for (const settings of Object.values(routeSettings)) {
      expect(settings.ThrottlingRateLimit).toBeLessThan(HTTP_STAGE_THROTTLE.rateLimit);
      expect(settings).toEqual({
        ThrottlingRateLimit: PUBLIC_ROUTE_THROTTLE.rateLimit,
        ThrottlingBurstLimit: PUBLIC_ROUTE_THROTTLE.burstLimit,
      });
    }
    const accessLogs = stage.AccessLogSettings as { DestinationArn: unknown; Format: string };
    const format = JSON.parse(accessLogs.Format) as Record<string, string>;
    expect(format.requestId).toBe('$context.requestId');
    expect(format.status).toBe('$context.status');
    expect(accessLogs.Format).not.toMatch(/body|querystring|authorization/i);
  });
});

// ---- WebSocket API ----

describe('WebSocket API', () => {
  const wsRoutes = () =>
    resources(statelessTemplate, 'AWS::ApiGatewayV2::Route').filter(
      ([, route]) => JSON.stringify(route.Properties.ApiId) === JSON.stringify({ Ref: webSocketApiId() }),
    );

  test('routes by $request.body.action, exactly the routes of the table', () => {
    const api = statelessTemplate.findResources('AWS::ApiGatewayV2::Api')[webSocketApiId()];
    expect(api?.Properties.ProtocolType).toBe('WEBSOCKET');
    expect(api?.Properties.RouteSelectionExpression).toBe('$request.body.action');
    expect(
      wsRoutes()
        .map(([, route]) => route.Properties.RouteKey)
        .sort(),
    ).toEqual(WEBSOCKET_ROUTES.map((route) => route.routeKey).sort());
  });

  test('$connect runs the Lambda REQUEST authorizer reading the token from the query string', () => {
    const authorizers = resources(statelessTemplate, 'AWS::ApiGatewayV2::Authorizer').filter(
      ([, authorizer]) => JSON.stringify(authorizer.Properties.ApiId) === JSON.stringify({ Ref: webSocketApiId() }),
    );
    expect(authorizers).toHaveLength(1);
    const [authorizerId, authorizer] = authorizers[0] ?? ['', { Properties: {} }];
    expect(authorizer.Properties.AuthorizerType).toBe('REQUEST');
    expect(authorizer.Properties.IdentitySource).toEqual(['route.request.querystring.token']);
    expect(JSON.stringify(authorizer.Properties.AuthorizerUri)).toContain(
      `"${functionNamed(WEBSOCKET_AUTHORIZER.name).id}"`,
    );
    for (const [, route] of wsRoutes()) {
      if (route.Properties.RouteKey === '$connect') {
        expect(route.Properties.AuthorizationType).toBe('CUSTOM');
        expect(route.Properties.AuthorizerId).toEqual({ Ref: authorizerId });
      } else {
        expect(route.Properties.AuthorizationType ?? 'NONE').toBe('NONE');
      }
    }
    // API Gateway may invoke the authorizer, and nothing else may.
    statelessTemplate.hasResourceProperties('AWS::Lambda::Permission', {
      FunctionName: { 'Fn::GetAtt': [functionNamed(WEBSOCKET_AUTHORIZER.name).id, 'Arn'] },
      Principal: 'apigateway.amazonaws.com',
    });
  });

  test('two-way routes have a route response; one-way routes do not', () => {
    const responses = resources(statelessTemplate, 'AWS::ApiGatewayV2::RouteResponse');
    for (const route of WEBSOCKET_ROUTES) {
      const entry = wsRoutes().find(([, candidate]) => candidate.Properties.RouteKey === route.routeKey);
      const routeId = entry?.[0] ?? '';
      const withResponse = responses.filter(
        ([, response]) => JSON.stringify(response.Properties.RouteId) === JSON.stringify({ Ref: routeId }),
      );
      expect(withResponse).toHaveLength(route.returnResponse ? 1 : 0);
      for (const [, response] of withResponse) expect(response.Properties.RouteResponseKey).toBe('$default');
    }
  });

  test('the stage auto-deploys, is throttled and writes access logs through the account logging role', () => {
    const stages = resources(statelessTemplate, 'AWS::ApiGatewayV2::Stage').filter(
      ([, stage]) => JSON.stringify(stage.Properties.ApiId) === JSON.stringify({ Ref: webSocketApiId() }),
    );
    expect(stages).toHaveLength(1);
    const [stageId, stage] = stages[0] ?? ['', { Properties: {} }];
    expect(stage.Properties.StageName).toBe(WEBSOCKET_STAGE_NAME);
    expect(stage.Properties.AutoDeploy).toBe(true);
    expect(stage.Properties.DefaultRouteSettings).toEqual({
      ThrottlingRateLimit: WEBSOCKET_STAGE_THROTTLE.rateLimit,
      ThrottlingBurstLimit: WEBSOCKET_STAGE_THROTTLE.burstLimit,
    });
    expect(stage.Properties.AccessLogSettings).toBeDefined();
    const accounts = resources(statelessTemplate, 'AWS::ApiGateway::Account');
    expect(accounts).toHaveLength(1);
    const [accountId] = accounts[0] ?? [''];
    expect(statelessTemplate.toJSON().Resources[stageId].DependsOn).toContain(accountId);
  });

  test('functions that post get WS_MANAGEMENT_ENDPOINT, the stage callback URL', () => {
    for (const expected of expectedFunctions()) {
      const environment = environmentOf(expected.name);
      if (!expected.access.postsToConnections) {
        expect(environment.WS_MANAGEMENT_ENDPOINT).toBeUndefined();
        continue;
      }
      const url = JSON.stringify(environment.WS_MANAGEMENT_ENDPOINT);
      expect(url).toContain('"https://"');
      expect(url).toContain(`{"Ref":"${webSocketApiId()}"}`);
      expect(url).toContain('".execute-api."');
      expect(url).toContain(`"/${WEBSOCKET_STAGE_NAME}"`);
    }
  });
});

// ---- functions ----

describe('functions', () => {
  test('one function per cloud route, WebSocket route, authorizer, consumer and schedule, and no other', () => {
    const expected = expectedFunctions();
    expect(new Set(expected.map((fn) => fn.name)).size).toBe(expected.length);
    expect(stateless.functions.map((fn) => fn.name).sort()).toEqual(expected.map((fn) => fn.name).sort());
    expect(resources(statelessTemplate, 'AWS::Lambda::Function')).toHaveLength(expected.length);
    expect(resources(statefulTemplate, 'AWS::Lambda::Function')).toHaveLength(0);
  });

  test('every function is nodejs22.x on arm64 with active tracing, its own log group with a retention, and bounded memory and timeout', () => {
    const logGroups = statelessTemplate.findResources('AWS::Logs::LogGroup');
    for (const [id, fn] of resources(statelessTemplate, 'AWS::Lambda::Function')) {
      expect([id, fn.Properties.Runtime]).toEqual([id, 'nodejs22.x']);
      expect([id, fn.Properties.Architectures]).toEqual([id, ['arm64']]);
      expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
      expect(fn.Properties.Handler).toBe('index.handler');
      const logGroupRef = (fn.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(logGroups[logGroupRef]?.Properties.RetentionInDays).toBeGreaterThan(0);
      expect(fn.Properties.MemorySize).toBeGreaterThanOrEqual(256);
      expect(fn.Properties.MemorySize).toBeLessThanOrEqual(1024);
      expect(fn.Properties.Timeout).toBeGreaterThan(0);
      expect(fn.Properties.Timeout).toBeLessThanOrEqual(900);
    }
    // API Gateway gives an HTTP integration 30 s at most; route handlers must answer well before.
    for (const route of [...cloudHttpRoutes(), ...WEBSOCKET_ROUTES])
      expect(functionNamed(route.name).properties.Timeout).toBeLessThan(30);
  });

  test("no role uses an AWS managed policy except API Gateway's account logging role", () => {
    for (const [id, role] of resources(statelessTemplate, 'AWS::IAM::Role')) {
      const managed = JSON.stringify(role.Properties.ManagedPolicyArns ?? []);
      if (id.startsWith('ApiGatewayCloudWatchRole')) expect(managed).toContain('AmazonAPIGatewayPushToCloudWatchLogs');
      else expect(managed).toBe('[]');
    }
  });

  test('environment carries exactly the configuration each function needs', () => {
    for (const expected of expectedFunctions()) {
      const access = effectiveAccess(expected.access);
      const environment = environmentOf(expected.name);
      // The local runner hands each handler only these grant variables: no function on AWS has more.
      for (const name of Object.keys(environment).filter(isGrantVariable))
        expect([expected.name, name, grantedVariables(expected.access).includes(name)]).toEqual([
          expected.name,
          name,
          true,
        ]);
      const usesTables = access.ledger !== undefined || access.connections !== undefined || access.rateLimit === true;
      for (const definition of TABLES) {
        expect([expected.name, definition.envVar, environment[definition.envVar] !== undefined]).toEqual([
          expected.name,
          definition.envVar,
          usesTables,
        ]);
        if (usesTables)
          expect(JSON.stringify(environment[definition.envVar])).toContain(tableLogicalId(definition.envVar));
      }
      for (const queue of QUEUES) {
        const sends = access.sendsTo?.includes(queue.logicalName) ?? false;
        expect([
          expected.name,
          queueUrlEnvVar(queue.logicalName),
          environment[queueUrlEnvVar(queue.logicalName)] !== undefined,
        ]).toEqual([expected.name, queueUrlEnvVar(queue.logicalName), sends]);
      }
      expect([expected.name, environment.STRIPE_SECRET_ARN !== undefined]).toEqual([
        expected.name,
        access.stripe === true,
      ]);
      const verifiesTokens = expected.kind === 'authorizer';
      for (const name of ['JWT_ISSUER', 'JWT_AUDIENCE', 'JWT_JWKS_URL'])
        expect([expected.name, name, environment[name] !== undefined]).toEqual([expected.name, name, verifiesTokens]);
      const readsClaims =
        verifiesTokens ||
        (expected.kind === 'http' && cloudHttpRoutes().find((route) => route.name === expected.name)?.auth === 'jwt');
      for (const [name, value] of Object.entries(COGNITO_CLAIM_NAMES)) {
        expect([expected.name, name, environment[name]]).toEqual([
          expected.name,
          name,
          readsClaims ? value : undefined,
        ]);
      }
    }
    const authorizerEnvironment = environmentOf(WEBSOCKET_AUTHORIZER.name);
    const pool = logicalId(stateful.identity.userPool as IConstruct);
    expect(JSON.stringify(authorizerEnvironment.JWT_ISSUER)).toContain(`${pool}ProviderURL`);
    expect(JSON.stringify(authorizerEnvironment.JWT_JWKS_URL)).toContain('/.well-known/jwks.json');
    expect(COGNITO_CLAIM_NAMES.CLAIM_COUNTRY).toBe('custom:country');
  });
});

// ---- IAM ----

describe('IAM', () => {
  test('no statement allows "*" or a service wildcard action; "*" resources only for X-Ray', () => {
    const statements = allStatements();
    expect(statements.length).toBeGreaterThan(0);
    for (const statement of statements.filter((candidate) => candidate.Effect === 'Allow')) {
      for (const action of actionsOf(statement)) expect(action).not.toContain('*');
      if (resourceText(statement) === '"*"')
        for (const action of actionsOf(statement)) expect(action).toMatch(/^xray:/);
    }
  });

  test('each function is granted exactly what its access in the route table says', () => {
    const readActions = [...TABLE_READ_ACTIONS].sort();
    for (const expected of expectedFunctions()) {
      const access = effectiveAccess(expected.access);
      const { roleId } = functionNamed(expected.name);
      const statements = statementsOfRole(roleId);
      const label = (what: string) => `${expected.name}: ${what}`;

      // The rate-limit counters: UpdateItem on the ledger, only on partition keys starting with RATE#.
      const rateStatements = statements.filter((statement) =>
        JSON.stringify(statement.Condition ?? {}).includes('dynamodb:LeadingKeys'),
      );
      expect([label('rate counters'), rateStatements.length]).toEqual([
        label('rate counters'),
        access.rateLimit ? 1 : 0,
      ]);
      for (const statement of rateStatements) {
        expect(actionsOf(statement)).toEqual(['dynamodb:UpdateItem']);
        expect(statement.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['RATE#*'] } });
        expect(resourceText(statement)).toContain(tableLogicalId('LEDGER_TABLE'));
      }
      for (const definition of TABLES) {
        const tableId = tableLogicalId(definition.envVar);
        const level = definition.envVar === 'LEDGER_TABLE' ? access.ledger : access.connections;
        const onTable = statements.filter(
          (statement) => resourceText(statement).includes(tableId) && !rateStatements.includes(statement),
        );
        const tableActions = onTable
          .filter((statement) => !resourceText(statement).includes('/index/'))
          .flatMap(actionsOf)
          .sort();
        const indexStatements = onTable.filter((statement) => resourceText(statement).includes('/index/'));
        if (level === undefined) {
          expect([label(definition.logicalName), onTable]).toEqual([label(definition.logicalName), []]);
          continue;
        }
        expect([label(definition.logicalName), tableActions]).toEqual([
          label(definition.logicalName),
          level === 'read' ? readActions : grantedTableActions(definition.envVar, level).sort(),
        ]);
        expect(indexStatements.flatMap(actionsOf)).toEqual([...INDEX_ACTIONS]);
        const indexText = indexStatements.map(resourceText).join();
        for (const index of definition.globalSecondaryIndexes)
          expect(indexText).toContain(`/index/${index.indexName}"`);
        expect(indexText).not.toContain('/index/*');
      }

      const secretStatements = statements.filter((statement) =>
        actionsOf(statement).includes('secretsmanager:GetSecretValue'),
      );
      expect([label('stripe secret'), secretStatements.length]).toEqual([
        label('stripe secret'),
        access.stripe ? 1 : 0,
      ]);
      for (const statement of secretStatements)
        expect(resourceText(statement)).toContain(logicalId(stateful.stripeSecret));

      const consumed = QUEUE_CONSUMERS.find((consumer) => consumer.name === expected.name)?.queue;
      for (const queue of QUEUES) {
        const onQueue = statements.filter((statement) =>
          resourceText(statement).includes(queueLogicalId(queue.logicalName)),
        );
        const actions = onQueue.flatMap(actionsOf);
        expect([label(`send ${queue.logicalName}`), actions.includes('sqs:SendMessage')]).toEqual([
          label(`send ${queue.logicalName}`),
          access.sendsTo?.includes(queue.logicalName) ?? false,
        ]);
        expect([label(`receive ${queue.logicalName}`), actions.includes('sqs:ReceiveMessage')]).toEqual([
          label(`receive ${queue.logicalName}`),
          consumed === queue.logicalName,
        ]);
      }

      const manage = statements.filter((statement) => actionsOf(statement).includes(MANAGE_CONNECTIONS_ACTION));
      expect([label('@connections'), manage.length]).toEqual([
        label('@connections'),
        access.postsToConnections ? 1 : 0,
      ]);
      for (const statement of manage) {
        expect(resourceText(statement)).toContain(`/${WEBSOCKET_STAGE_NAME}/POST/@connections/*`);
        expect(resourceText(statement)).toContain(webSocketApiId());
      }
    }
  });
});

// ---- stateful resources ----

describe('tables', () => {
  test.each(TABLES.map((definition) => [definition.logicalName, definition] as const))(
    '%s: keys, indexes, TTL, PITR, contributor insights, protection',
    (_name, definition) => {
      const id = tableLogicalId(definition.envVar);
      const table = statefulTemplate.toJSON().Resources[id];
      const properties = table.Properties;
      expect(properties.TableName).toBeUndefined();
      expect(properties.BillingMode).toBe('PAY_PER_REQUEST');
      expect(properties.KeySchema).toEqual([
        { AttributeName: definition.partitionKey.name, KeyType: 'HASH' },
        ...(definition.sortKey ? [{ AttributeName: definition.sortKey.name, KeyType: 'RANGE' }] : []),
      ]);
      expect(properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(properties.TimeToLiveSpecification).toEqual({
        AttributeName: definition.timeToLiveAttribute,
        Enabled: true,
      });
      expect(properties.ContributorInsightsSpecification).toEqual({ Enabled: true, Mode: 'THROTTLED_KEYS' });
      expect(properties.SSESpecification).toEqual({ SSEEnabled: true });
      expect(properties.DeletionProtectionEnabled).toBe(definition.holdsMoney);
      if (definition.holdsMoney) {
        expect(table.DeletionPolicy).toBe('Retain');
        expect(table.UpdateReplacePolicy).toBe('Retain');
      }
      const indexes = properties.GlobalSecondaryIndexes as Array<Record<string, unknown>>;
      expect(indexes.map((index) => index.IndexName)).toEqual(
        definition.globalSecondaryIndexes.map((index) => index.indexName),
      );
      for (const index of definition.globalSecondaryIndexes) {
        const synthesized = indexes.find((candidate) => candidate.IndexName === index.indexName);
        expect(synthesized?.KeySchema).toEqual([
          { AttributeName: index.partitionKey.name, KeyType: 'HASH' },
          ...(index.sortKey ? [{ AttributeName: index.sortKey.name, KeyType: 'RANGE' }] : []),
        ]);
        expect(synthesized?.Projection).toEqual({ ProjectionType: index.projection });
        expect(synthesized?.ContributorInsightsSpecification).toEqual({ Enabled: true, Mode: 'THROTTLED_KEYS' });
      }
      const attributes = properties.AttributeDefinitions as Array<{ AttributeName: string; AttributeType: string }>;
      for (const key of [
        definition.partitionKey,
        definition.sortKey,
        ...definition.globalSecondaryIndexes.flatMap((index) => [index.partitionKey, index.sortKey]),
      ]) {
        if (key) expect(attributes).toContainEqual({ AttributeName: key.name, AttributeType: key.type });
      }
    },
  );

  test('the stateful stack has termination protection', () => {
    expect(stateful.terminationProtection).toBe(true);
  });
});

describe('queues', () => {
  test('the route table defines the queues the design needs', () => {
    expect(QUEUES.length).toBeGreaterThan(0);
  });

  test.each(QUEUES.map((definition) => [definition.logicalName, definition] as const))(
    '%s: DLQ, redrive, visibility, encryption, TLS only',
    (name, definition) => {
      const all = statefulTemplate.toJSON().Resources;
      const queue = all[queueLogicalId(name)];
      const deadLetter = all[logicalId(stateful.deadLetterQueues.get(name) as IConstruct)];
      expect(queue.Properties.QueueName).toBeUndefined();
      expect(Boolean(queue.Properties.FifoQueue)).toBe(definition.fifo);
      expect(Boolean(deadLetter.Properties.FifoQueue)).toBe(definition.fifo);
      expect(queue.Properties.VisibilityTimeout).toBe(definition.visibilityTimeoutSeconds);
      expect(queue.Properties.RedrivePolicy.maxReceiveCount).toBe(definition.deadLetter.maxReceiveCount);
      expect(queue.Properties.RedrivePolicy.maxReceiveCount).toBeGreaterThanOrEqual(MIN_MAX_RECEIVE_COUNT);
      expect(JSON.stringify(queue.Properties.RedrivePolicy.deadLetterTargetArn)).toContain(
        logicalId(stateful.deadLetterQueues.get(name) as IConstruct),
      );
      for (const synthesized of [queue, deadLetter]) {
        expect(synthesized.Properties.SqsManagedSseEnabled).toBe(true);
        expect(synthesized.DeletionPolicy).toBe('Retain');
      }
      const policies = resources(statefulTemplate, 'AWS::SQS::QueuePolicy').filter(([, policy]) =>
        JSON.stringify(policy.Properties.Queues).includes(queueLogicalId(name)),
      );
      expect(JSON.stringify(policies.map(([, policy]) => policy.Properties.PolicyDocument))).toContain(
        '"aws:SecureTransport":"false"',
      );
    },
  );

  test.each(QUEUE_CONSUMERS.map((consumer) => [consumer.name, consumer] as const))(
    '%s: event source with partial batch failures and bounded concurrency; visibility at least 6x the timeout',
    (name, consumer) => {
      const definition = QUEUES.find((queue) => queue.logicalName === consumer.queue);
      const { id, properties } = functionNamed(name);
      expect(definition?.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(
        VISIBILITY_TO_TIMEOUT_RATIO * Number(properties.Timeout),
      );
      expect(properties.Timeout).toBe(consumer.timeoutSeconds);
      const mappings = resources(statelessTemplate, 'AWS::Lambda::EventSourceMapping').filter(
        ([, mapping]) => JSON.stringify(mapping.Properties.FunctionName) === JSON.stringify({ Ref: id }),
      );
      expect(mappings).toHaveLength(1);
      const mapping = mappings[0]?.[1].Properties ?? {};
      expect(mapping.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
      expect(mapping.ScalingConfig).toEqual({ MaximumConcurrency: consumer.maxConcurrency });
      expect(mapping.BatchSize).toBe(consumer.batchSize);
      expect(JSON.stringify(mapping.EventSourceArn)).toContain(queueLogicalId(consumer.queue));
      if (definition?.fifo || consumer.maximumBatchingWindowMs === 0)
        expect(mapping.MaximumBatchingWindowInSeconds).toBeUndefined();
      else expect(mapping.MaximumBatchingWindowInSeconds).toBe(Math.ceil(consumer.maximumBatchingWindowMs / 1000));
    },
  );
});

describe('schedules', () => {
  test.each(SCHEDULES.map((schedule) => [schedule.name, schedule] as const))(
    '%s runs on an EventBridge rate rule',
    (name, schedule) => {
      const minutes = Math.max(MIN_SCHEDULE_MINUTES, Math.ceil(schedule.everySeconds / 60));
      const { id, properties } = functionNamed(name);
      expect(properties.Timeout).toBe(schedule.timeoutSeconds);
      const rules = resources(statelessTemplate, 'AWS::Events::Rule').filter(([, rule]) =>
        JSON.stringify(rule.Properties.Targets).includes(`"${id}"`),
      );
      expect(rules).toHaveLength(1);
      expect(rules[0]?.[1].Properties.ScheduleExpression).toBe(
        `rate(${minutes} ${minutes === 1 ? 'minute' : 'minutes'})`,
      );
      expect(rules[0]?.[1].Properties.State).toBe('ENABLED');
    },
  );
});

describe('Stripe secret and identity', () => {
  test('the Stripe secret is generated (no value in the template) and retained', () => {
    const secrets = resources(statefulTemplate, 'AWS::SecretsManager::Secret');
    expect(secrets).toHaveLength(1);
    const [, secret] = secrets[0] ?? ['', { Properties: {} }];
    expect(secret.Properties.SecretString).toBeUndefined();
    expect(secret.Properties.Name).toBeUndefined();
    const generate = secret.Properties.GenerateSecretString as {
      SecretStringTemplate: string;
      GenerateStringKey: string;
    };
    expect(generate.GenerateStringKey).toBe('webhookSecret');
    expect(JSON.parse(generate.SecretStringTemplate)).toEqual({ secretKey: expect.not.stringMatching(/^sk_/) });
    expect(secret.DeletionPolicy).toBe('Retain');
  });

  test("the user pool's birthdate, country and parental_consent are readable but not writable by the app client", () => {
    const pools = resources(statefulTemplate, 'AWS::Cognito::UserPool');
    expect(pools).toHaveLength(1);
    const [, pool] = pools[0] ?? ['', { Properties: {} }];
    const schema = pool.Properties.Schema as Array<{ Name: string; AttributeDataType?: string }>;
    expect(schema.map((attribute) => attribute.Name)).toEqual(
      expect.arrayContaining(['birthdate', 'country', 'parental_consent']),
    );
    expect(pool.DeletionPolicy).toBe('Retain');
    expect(pool.Properties.DeletionProtection).toBe('ACTIVE');
    const [, client] = resources(statefulTemplate, 'AWS::Cognito::UserPoolClient')[0] ?? ['', { Properties: {} }];
    expect(client.Properties.ReadAttributes).toEqual(
      expect.arrayContaining(['birthdate', 'custom:country', 'custom:parental_consent']),
    );
    for (const attribute of ['birthdate', 'custom:country', 'custom:parental_consent'])
      expect(client.Properties.WriteAttributes).not.toContain(attribute);
    expect(client.Properties.GenerateSecret).toBe(false);
  });
});

// ---- alarms ----

describe('alarms', () => {
  const alarms = () => resources(statelessTemplate, 'AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties);
  const alarmsOn = (metricName: string) =>
    alarms().filter(
      (alarm) =>
        alarm.MetricName === metricName || JSON.stringify(alarm.Metrics ?? []).includes(`"MetricName":"${metricName}"`),
    );

  test('every dead-letter queue alarms as soon as it is not empty', () => {
    for (const [name, deadLetterQueue] of stateful.deadLetterQueues) {
      const matching = alarmsOn('ApproximateNumberOfMessagesVisible').filter((alarm) =>
        JSON.stringify(alarm.Dimensions).includes(logicalId(deadLetterQueue)),
      );
      expect([name, matching.length]).toEqual([name, 1]);
      expect(matching[0]?.Threshold).toBe(1);
      expect(matching[0]?.ComparisonOperator).toBe('GreaterThanOrEqualToThreshold');
    }
    expect(stateful.deadLetterQueues.size).toBe(QUEUES.length);
  });

  test('every consumed queue alarms on the age of its oldest message (the payout worker included)', () => {
    expect(QUEUE_CONSUMERS.some((consumer) => consumer.queue === 'payouts')).toBe(true);
    for (const consumer of QUEUE_CONSUMERS) {
      const matching = alarmsOn('ApproximateAgeOfOldestMessage').filter((alarm) =>
        JSON.stringify(alarm.Dimensions).includes(queueLogicalId(consumer.queue)),
      );
      expect([consumer.name, matching.length]).toEqual([consumer.name, 1]);
    }
  });

  test('5xx and throttles on both APIs', () => {
    expect(alarmsOn('5xx').filter((alarm) => JSON.stringify(alarm.Dimensions).includes(httpApiId()))).toHaveLength(1);
    const webSocketErrors = alarms().filter(
      (alarm) =>
        JSON.stringify(alarm.Metrics ?? []).includes('ExecutionError') &&
        JSON.stringify(alarm.Metrics).includes('IntegrationError'),
    );
    expect(webSocketErrors).toHaveLength(1);
    expect(JSON.stringify(webSocketErrors[0]?.Metrics)).toContain(webSocketApiId());
    const filters = resources(statelessTemplate, 'AWS::Logs::MetricFilter').map(([, filter]) => filter.Properties);
    expect(filters).toHaveLength(2);
    for (const filter of filters) {
      expect(filter.FilterPattern).toContain('429');
      const metric = (filter.MetricTransformations as Array<{ MetricName: string }>)[0]?.MetricName ?? '';
      expect(alarmsOn(metric)).toHaveLength(1);
    }
    const logGroups = filters.map((filter) => JSON.stringify(filter.LogGroupName)).join();
    for (const stage of resources(statelessTemplate, 'AWS::ApiGatewayV2::Stage')) {
      const destination = JSON.stringify(
        (stage[1].Properties.AccessLogSettings as { DestinationArn: { 'Fn::GetAtt': [string, string] } })
          .DestinationArn['Fn::GetAtt'][0],
      );
      expect(logGroups).toContain(destination);
    }
  });

  test('Lambda errors alarm per function', () => {
    for (const { name } of stateless.functions) {
      const { id } = functionNamed(name);
      const matching = alarmsOn('Errors').filter(
        (alarm) => JSON.stringify(alarm.Dimensions) === JSON.stringify([{ Name: 'FunctionName', Value: { Ref: id } }]),
      );
      expect([name, matching.length]).toEqual([name, 1]);
    }
  });

  test('DynamoDB throttles alarm per table, its indexes included', () => {
    for (const definition of TABLES) {
      const matching = alarms().filter((alarm) =>
        JSON.stringify(alarm.Metrics ?? []).includes(tableLogicalId(definition.envVar)),
      );
      expect([definition.logicalName, matching.length]).toEqual([definition.logicalName, 1]);
      const metrics = JSON.stringify(matching[0]?.Metrics);
      expect(metrics).toContain('ReadThrottleEvents');
      expect(metrics).toContain('WriteThrottleEvents');
      for (const index of definition.globalSecondaryIndexes) expect(metrics).toContain(`"Value":"${index.indexName}"`);
    }
  });

  test('every alarm notifies the alarm topic', () => {
    const topicId = logicalId(stateless.alarmTopic);
    expect(alarms().length).toBeGreaterThan(0);
    for (const alarm of alarms()) {
      expect(alarm.AlarmActions).toEqual([{ Ref: topicId }]);
      expect(alarm.AlarmName).toBeUndefined();
    }
  });
});

// ---- outputs, names, cdk-nag ----

describe('outputs', () => {
  test('HttpApiUrl, WebSocketUrl, StripeWebhookUrl, and where to put the Stripe keys', () => {
    const outputs = statelessTemplate.toJSON().Outputs;
    expect(JSON.stringify(outputs.HttpApiUrl.Value)).toContain(httpApiId());
    expect(JSON.stringify(outputs.WebSocketUrl.Value)).toContain('"wss://"');
    expect(JSON.stringify(outputs.WebSocketUrl.Value)).toContain(`"/${WEBSOCKET_STAGE_NAME}"`);
    const hasWebhook = cloudHttpRoutes().some((route) => route.path === STRIPE_WEBHOOK_PATH);
    expect(outputs.StripeWebhookUrl !== undefined).toBe(hasWebhook);
    if (hasWebhook) {
      expect(JSON.stringify(outputs.StripeWebhookUrl.Value)).toContain(httpApiId());
      expect(JSON.stringify(outputs.StripeWebhookUrl.Value)).toContain(`${STRIPE_WEBHOOK_PATH}"`);
    }
    expect(outputs.UserPoolId).toBeDefined();
    expect(outputs.UserPoolClientId).toBeDefined();
    expect(statefulTemplate.toJSON().Outputs.StripeSecretArn.Value).toEqual({ Ref: logicalId(stateful.stripeSecret) });
  });
});

describe('names', () => {
  test('no hard-coded physical names', () => {
    const nameProperties: Record<string, string> = {
      'AWS::DynamoDB::Table': 'TableName',
      'AWS::SQS::Queue': 'QueueName',
      'AWS::Lambda::Function': 'FunctionName',
      'AWS::Logs::LogGroup': 'LogGroupName',
      'AWS::IAM::Role': 'RoleName',
      'AWS::SecretsManager::Secret': 'Name',
      'AWS::Cognito::UserPool': 'UserPoolName',
      'AWS::SNS::Topic': 'TopicName',
      'AWS::CloudWatch::Alarm': 'AlarmName',
      'AWS::Events::Rule': 'Name',
    };
    for (const template of [statefulTemplate, statelessTemplate]) {
      for (const [type, property] of Object.entries(nameProperties)) {
        for (const [id, resource] of resources(template, type))
          expect([id, resource.Properties[property]]).toEqual([id, undefined]);
      }
    }
  });
});

describe('cdk-nag (AwsSolutionsChecks)', () => {
  test('reports nothing unacknowledged, and CDK itself warns of nothing', () => {
    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
      pluginReports: Array<{ pluginName: string; violations: Array<{ ruleName: string; severity: string }> }>;
    };
    // Every plugin: cdk-nag, and CDK's own construct warnings (deprecated APIs and the like).
    // The committed cdk.json names no SES identity and no onboarding URLs: synth says so, and nothing else.
    expect(
      report.pluginReports
        .flatMap((plugin) =>
          plugin.violations.map((violation) => `${plugin.pluginName}: ${violation.severity} ${violation.ruleName}`),
        )
        .sort(),
    ).toEqual([
      'Construct Annotations: warning Annotation::live-gifting:no-onboarding-urls',
      'Construct Annotations: warning Annotation::live-gifting:no-ses-identity',
    ]);
    expect(recorder.findings.length).toBeGreaterThan(0);
  });

  test('every acknowledgment has a written reason and answers a finding on that construct', () => {
    expect(acknowledgments.length).toBeGreaterThan(0);
    for (const acknowledgment of acknowledgments) {
      expect([acknowledgment.id, acknowledgment.reason.length >= 40]).toEqual([acknowledgment.id, true]);
      const ruleId = acknowledgment.id.replace(/^[A-Za-z-]+::/, '');
      const used = recorder.findings.some(
        (finding) =>
          finding.id === ruleId &&
          (finding.path === acknowledgment.path || finding.path.startsWith(`${acknowledgment.path}/`)),
      );
      expect([acknowledgment.path, ruleId, used]).toEqual([acknowledgment.path, ruleId, true]);
    }
  });

  test('no acknowledgment covers a wildcard action', () => {
    for (const acknowledgment of acknowledgments) expect(acknowledgment.id).not.toMatch(/Action::/);
  });
});

// ---- Event API (rooms' broadcast channels) ----

describe('Event API', () => {
  const eventApi = () => {
    const found = resources(statelessTemplate, 'AWS::AppSync::Api');
    expect(found).toHaveLength(1);
    return found[0]?.[1].Properties as Record<string, any>;
  };

  test('viewers connect and subscribe through the Lambda authorizer, never cached; only IAM publishes', () => {
    const config = eventApi().EventConfig;
    const authorizer = functionNamed(EVENT_API_AUTHORIZER.name);
    expect(config.AuthProviders).toEqual(
      expect.arrayContaining([
        { AuthType: 'AWS_IAM' },
        {
          AuthType: 'AWS_LAMBDA',
          LambdaAuthorizerConfig: expect.objectContaining({
            AuthorizerUri: { 'Fn::GetAtt': [authorizer.id, 'Arn'] },
            AuthorizerResultTtlInSeconds: 0,
          }),
        },
      ]),
    );
    expect(config.DefaultPublishAuthModes).toEqual([{ AuthType: 'AWS_IAM' }]);
    expect(config.DefaultSubscribeAuthModes).toEqual([{ AuthType: 'AWS_LAMBDA' }]);
    const namespaces = resources(statelessTemplate, 'AWS::AppSync::ChannelNamespace');
    expect(namespaces).toHaveLength(1);
    const rooms = namespaces[0]?.[1].Properties as Record<string, unknown>;
    expect(rooms).toMatchObject({
      Name: 'rooms',
      PublishAuthModes: [{ AuthType: 'AWS_IAM' }],
      SubscribeAuthModes: [{ AuthType: 'AWS_LAMBDA' }],
    });
    // No handler code and no data source: nothing behind the Event API can write anything.
    expect(rooms.CodeHandlers).toBeUndefined();
    expect(rooms.HandlerConfigs ?? {}).toEqual({});
    expect(resources(statelessTemplate, 'AWS::AppSync::DataSource')).toHaveLength(0);
  });

  test('only the broadcaster may publish, to the rooms namespace; the authorizer only reads the ledger', () => {
    const broadcaster = functionNamed('GiftBroadcaster');
    const publishers = resources(statelessTemplate, 'AWS::IAM::Policy').filter(([, policy]) =>
      JSON.stringify(policy.Properties.PolicyDocument).includes('appsync:EventPublish'),
    );
    expect(publishers).toHaveLength(1);
    expect(JSON.stringify(publishers[0]?.[1].Properties.Roles)).toContain(`"${broadcaster.roleId}"`);
    const publish = statementsOfRole(broadcaster.roleId).filter((statement) =>
      actionsOf(statement).some((action) => action.startsWith('appsync:')),
    );
    expect(publish.flatMap(actionsOf)).toEqual(['appsync:EventPublish']);
    expect(resourceText(publish[0] as Statement)).toContain('channelNamespace/rooms');
    expect(JSON.stringify(environmentOf('GiftBroadcaster').EVENT_API_HTTP_URL)).toContain('/event');

    const authorizer = functionNamed(EVENT_API_AUTHORIZER.name);
    const actions = statementsOfRole(authorizer.roleId).flatMap(actionsOf);
    expect([...new Set(actions.filter((action) => action.startsWith('dynamodb:')))].sort()).toEqual(
      [...TABLE_READ_ACTIONS].sort(),
    );
    expect(actions.some((action) => action.startsWith('appsync:'))).toBe(false);
  });

  test("the Event API's 5xx and 4xx, and the broadcaster's failed publishes, alarm to the topic", () => {
    const apiId = logicalId(stateless.roomEvents.api);
    const alarms = resources(statelessTemplate, 'AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties);
    for (const metricName of ['5XXError', '4XXError']) {
      expect(alarms).toContainEqual(
        expect.objectContaining({
          Namespace: 'AWS/AppSync',
          MetricName: metricName,
          Dimensions: [{ Name: 'EventAPIId', Value: { 'Fn::GetAtt': [apiId, 'ApiId'] } }],
        }),
      );
    }
    expect(alarms).toContainEqual(expect.objectContaining({ MetricName: 'EventApiPublishesFailed' }));
  });
});
