import type { CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cdkJsonContext, createApp } from '../../infra/app';
import { WEBSOCKET_AUTHORIZER } from '../../infra/routes';

/**
 * A deployment that trusts an existing OIDC issuer instead of creating a user pool, with every
 * other context value set the way `cdk deploy -c key=value` passes them (as strings). One
 * synthesis, bundling skipped; context validation needs no synthesis at all.
 */
const SYNTH_TIMEOUT_MS = 180_000;
const ISSUER = 'https://login.example.com/';
const AUDIENCE = 'live-gifting-api';
const context = {
  oidcIssuer: ISSUER,
  oidcAudience: AUDIENCE,
  stackNamePrefix: 'Staging',
  alarmEmail: 'oncall@example.com',
  corsAllowOrigins: 'https://app.example.com, https://demo.example.com',
  apiGatewayCloudWatchRole: 'false',
  functionEnvironment: '{"CREATOR_SHARDS":"64"}',
};

let outdir: string;
let statefulTemplate: Template;
let statelessTemplate: Template;
let statelessName: string;
let authorizerFunctionId: string;

beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), 'infra-context-'));
  const { app, stateful, stateless } = createApp({
    context: { ...cdkJsonContext(), ...context, 'aws:cdk:bundling-stacks': [] },
    outdir,
  });
  const assembly = app.synth();
  statefulTemplate = Template.fromJSON(assembly.getStackByName(stateful.stackName).template);
  statelessTemplate = Template.fromJSON(assembly.getStackByName(stateless.stackName).template);
  statelessName = stateless.stackName;
  const authorizer = stateless.functions.find((fn) => fn.name === WEBSOCKET_AUTHORIZER.name);
  authorizerFunctionId = authorizer
    ? stateless.getLogicalId(authorizer.fn.function.node.defaultChild as CfnElement)
    : '';
}, SYNTH_TIMEOUT_MS);

afterAll(() => {
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

const functions = () => Object.entries(statelessTemplate.findResources('AWS::Lambda::Function'));
const variables = (properties: Record<string, unknown>): Record<string, unknown> =>
  (properties.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {};

test('stack names carry the prefix', () => {
  expect(statelessName).toBe('StagingStateless');
});

test('an OIDC issuer from context replaces the user pool', () => {
  for (const template of [statefulTemplate, statelessTemplate]) {
    expect(Object.keys(template.findResources('AWS::Cognito::UserPool'))).toHaveLength(0);
    expect(Object.keys(template.findResources('AWS::Cognito::UserPoolClient'))).toHaveLength(0);
  }
  statelessTemplate.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
    AuthorizerType: 'JWT',
    JwtConfiguration: { Issuer: ISSUER, Audience: [AUDIENCE] },
  });
  const outputs = statelessTemplate.toJSON().Outputs;
  expect(outputs.UserPoolId).toBeUndefined();
  expect(outputs.JwtIssuer.Value).toBe(ISSUER);
});

test("the WebSocket authorizer verifies against the same issuer; claim names stay API.md's defaults", () => {
  const authorizer = statelessTemplate.findResources('AWS::Lambda::Function')[authorizerFunctionId];
  expect(variables(authorizer?.Properties ?? {})).toMatchObject({
    JWT_ISSUER: ISSUER,
    JWT_AUDIENCE: AUDIENCE,
    JWT_JWKS_URL: 'https://login.example.com/.well-known/jwks.json',
  });
  for (const [, fn] of functions()) {
    for (const name of Object.keys(variables(fn.Properties))) expect(name).not.toMatch(/^CLAIM_/);
  }
});

test('functionEnvironment reaches every function', () => {
  expect(functions().length).toBeGreaterThan(0);
  for (const [id, fn] of functions()) expect([id, variables(fn.Properties).CREATOR_SHARDS]).toEqual([id, '64']);
});

test('alarmEmail subscribes to the alarm topic; CORS allows the listed origins', () => {
  statelessTemplate.hasResourceProperties('AWS::SNS::Subscription', {
    Protocol: 'email',
    Endpoint: 'oncall@example.com',
  });
  statelessTemplate.hasResourceProperties('AWS::ApiGatewayV2::Api', {
    ProtocolType: 'HTTP',
    CorsConfiguration: { AllowOrigins: ['https://app.example.com', 'https://demo.example.com'] },
  });
});

test('apiGatewayCloudWatchRole=false leaves the account logging role alone', () => {
  expect(Object.keys(statelessTemplate.findResources('AWS::ApiGateway::Account'))).toHaveLength(0);
});

test('cdk-nag stays clean in this configuration too', () => {
  const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: Array<{ pluginName: string; violations: unknown[] }>;
  };
  expect(
    report.pluginReports
      .filter((plugin) => plugin.pluginName === 'AwsSolutions')
      .flatMap((plugin) => plugin.violations),
  ).toEqual([]);
});

describe('context validation', () => {
  const attempt = (overrides: Record<string, unknown>) => () =>
    createApp({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], ...overrides } });

  test('an issuer without an audience is refused', () => {
    expect(attempt({ oidcIssuer: ISSUER })).toThrow(/oidcIssuer and oidcAudience/);
  });

  test('a plain-http issuer is refused', () => {
    expect(attempt({ oidcIssuer: 'http://login.example.com/', oidcAudience: AUDIENCE })).toThrow(/oidcIssuer/);
  });

  test('functionEnvironment cannot override what the stacks set, nor smuggle local-only settings', () => {
    expect(attempt({ functionEnvironment: '{"LEDGER_TABLE":"other"}' })).toThrow(/functionEnvironment/);
    expect(attempt({ functionEnvironment: { LOCAL_STACK: 'true' } })).toThrow(/functionEnvironment/);
    expect(attempt({ functionEnvironment: '{not json' })).toThrow(/functionEnvironment/);
  });

  test('claim names are configurable for an OIDC issuer only', () => {
    expect(attempt({ functionEnvironment: { CLAIM_COUNTRY: 'https://example.com/country' } })).toThrow(/CLAIM_/);
    expect(
      attempt({
        oidcIssuer: ISSUER,
        oidcAudience: AUDIENCE,
        functionEnvironment: { CLAIM_COUNTRY: 'https://example.com/country' },
      }),
    ).not.toThrow();
  });
});
