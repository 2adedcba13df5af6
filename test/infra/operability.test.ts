import { CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cdkJsonContext, createApp } from '../../infra/app';
import { metricsNamespace, PROJECT_ROOT, SOURCE_MAPS_NODE_OPTIONS } from '../../infra/constructs/app-function';
import { MIN_WARM_THROUGHPUT } from '../../infra/stacks/stateful-stack';
import type { StatefulStack } from '../../infra/stacks/stateful-stack';
import type { StatelessStack } from '../../infra/stacks/stateless-stack';
import { UNVERIFIED_EVENT_TYPE } from '../../shared/observability/metrics';

/**
 * Issue 16: what an on-call engineer and a first deploy rely on, pinned on the synthesized
 * templates. The committed cdk.json first (what a plain `npx cdk synth` deploys), then a stage
 * marked production with everything a launch sets. Bundling is skipped (bundling.test.ts bundles).
 */
const SYNTH_TIMEOUT_MS = 180_000;
const RETURN_URL = 'https://app.example.com/creator/payouts';
const REFRESH_URL = 'https://app.example.com/creator/payouts/retry';
const production = {
  production: 'true',
  payoutOnboardingReturnUrl: RETURN_URL,
  payoutOnboardingRefreshUrl: REFRESH_URL,
  sesFromEmail: 'no-reply@example.com',
  sesVerifiedDomain: 'example.com',
  sesRegion: 'eu-west-1',
  ledgerWarmReadUnits: '30000',
  ledgerWarmWriteUnits: '10000',
};

interface Synthesized {
  stateful: StatefulStack;
  stateless: StatelessStack;
  statefulTemplate: Template;
  statelessTemplate: Template;
  outdir: string;
}

const outdirs: string[] = [];
function synthesize(overrides: Record<string, unknown>): Synthesized {
  const outdir = mkdtempSync(join(tmpdir(), 'infra-operability-'));
  outdirs.push(outdir);
  const { app, stateful, stateless } = createApp({
    context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], ...overrides },
    outdir,
  });
  const assembly = app.synth();
  return {
    stateful,
    stateless,
    statefulTemplate: Template.fromJSON(assembly.getStackByName(stateful.stackName).template),
    statelessTemplate: Template.fromJSON(assembly.getStackByName(stateless.stackName).template),
    outdir,
  };
}

let plain: Synthesized;
let launch: Synthesized;
beforeAll(() => {
  plain = synthesize({});
  launch = synthesize(production);
}, SYNTH_TIMEOUT_MS);

afterAll(() => {
  for (const outdir of outdirs) rmSync(outdir, { recursive: true, force: true });
});

function logicalId(construct: IConstruct): string {
  const element = construct instanceof CfnElement ? construct : (construct.node.defaultChild as CfnElement);
  return Stack.of(element).getLogicalId(element);
}
const resources = (template: Template, type: string) => Object.entries(template.findResources(type));
const variables = (fn: Record<string, unknown>) =>
  ((fn.Properties as Record<string, unknown>).Environment as { Variables?: Record<string, unknown> } | undefined)
    ?.Variables ?? {};

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}
function statements(template: Template): Statement[] {
  return resources(template, 'AWS::IAM::Policy').flatMap(
    ([, policy]) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement,
  );
}
const actionsOf = (statement: Statement) => (Array.isArray(statement.Action) ? statement.Action : [statement.Action]);

function warnings(outdir: string): string[] {
  const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: Array<{ pluginName: string; violations: Array<{ ruleName: string; severity: string }> }>;
  };
  return report.pluginReports.flatMap((plugin) =>
    plugin.violations.filter((violation) => violation.severity === 'warning').map((violation) => violation.ruleName),
  );
}

describe('stack traces', () => {
  test('every function runs node with --enable-source-maps, which extra configuration cannot remove', () => {
    const functions = resources(plain.statelessTemplate, 'AWS::Lambda::Function');
    expect(functions.length).toBeGreaterThan(30);
    for (const [id, fn] of functions) expect([id, variables(fn).NODE_OPTIONS]).toEqual([id, SOURCE_MAPS_NODE_OPTIONS]);
    expect(() =>
      createApp({
        context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], functionEnvironment: { NODE_OPTIONS: '' } },
      }),
    ).toThrow(/functionEnvironment/);
  });
});

describe('least privilege on the ledger', () => {
  test('no function may DeleteItem or BatchWriteItem on the ledger; only the connections table allows DeleteItem', () => {
    const ledgerId = logicalId(plain.stateful.ledgerTable());
    const connectionsId = logicalId(plain.stateful.connectionsTable());
    const allows = statements(plain.statelessTemplate).filter((statement) => statement.Effect === 'Allow');
    const onLedger = allows.filter((statement) => JSON.stringify(statement.Resource).includes(ledgerId));
    expect(onLedger.length).toBeGreaterThan(10);
    for (const statement of onLedger) {
      expect(actionsOf(statement)).not.toContain('dynamodb:DeleteItem');
      expect(actionsOf(statement)).not.toContain('dynamodb:BatchWriteItem');
    }
    for (const statement of allows) expect(actionsOf(statement)).not.toContain('dynamodb:BatchWriteItem');
    // The connections store forgets closed connections: that grant is used, and is the only delete.
    const deletes = allows.filter((statement) => actionsOf(statement).includes('dynamodb:DeleteItem'));
    expect(deletes.length).toBeGreaterThan(0);
    for (const statement of deletes) expect(JSON.stringify(statement.Resource)).toContain(connectionsId);
  });

  test('and no code deletes from the ledger: DeleteItem and BatchWriteItem appear only in the connections store', () => {
    const users: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (name.endsWith('.ts') && /DeleteItem|BatchWriteItem|Delete:\s*\{/.test(readFileSync(path, 'utf8')))
          users.push(path.slice(PROJECT_ROOT.length + 1));
      }
    };
    walk(join(PROJECT_ROOT, 'shared'));
    walk(join(PROJECT_ROOT, 'functions'));
    expect(users).toEqual(['shared/adapters/dynamo/connections-store.ts']);
  });
});

describe("alarms on the product's own metrics", () => {
  const alarmOn = (metricName: string) =>
    resources(plain.statelessTemplate, 'AWS::CloudWatch::Alarm')
      .map(([, alarm]) => alarm.Properties)
      .filter(
        (alarm) => alarm.MetricName === metricName && alarm.Namespace === metricsNamespace(plain.stateless.stackName),
      );

  test.each(['PayoutsFailed', 'BroadcastsFailed', 'ConnectionPostsThrottled'])(
    "%s alarms, in this deployment's namespace, to the alarm topic",
    (metricName) => {
      const alarms = alarmOn(metricName);
      expect(alarms).toHaveLength(1);
      expect(alarms[0]?.AlarmActions).toEqual([{ Ref: logicalId(plain.stateless.alarmTopic) }]);
      expect(alarms[0]?.Threshold).toBeGreaterThanOrEqual(1);
    },
  );

  test('a spike of webhook signature failures alarms', () => {
    const alarms = alarmOn('WebhookEvents');
    expect(alarms).toHaveLength(1);
    expect(alarms[0]?.Dimensions).toEqual([
      { Name: 'outcome', Value: 'signature_failed' },
      { Name: 'type', Value: UNVERIFIED_EVENT_TYPE },
    ]);
    expect(alarms[0]?.Threshold).toBeGreaterThan(1);
  });

  test('functions write their metrics to the namespace the alarms watch', () => {
    for (const [id, fn] of resources(plain.statelessTemplate, 'AWS::Lambda::Function')) {
      expect([id, variables(fn).POWERTOOLS_METRICS_NAMESPACE]).toEqual([
        id,
        metricsNamespace(plain.stateless.stackName),
      ]);
    }
  });
});

describe('deploy hazards', () => {
  test('the API Gateway account role comes from the stateful stack, deployed before the account names it', () => {
    expect(
      resources(plain.statelessTemplate, 'AWS::IAM::Role').filter(([id]) => id.startsWith('ApiGatewayCloudWatchRole')),
    ).toHaveLength(0);
    const roles = resources(plain.statefulTemplate, 'AWS::IAM::Role').filter(([id]) =>
      id.startsWith('ApiGatewayCloudWatchRole'),
    );
    expect(roles).toHaveLength(1);
    expect(roles[0]?.[1].DeletionPolicy).toBe('Retain');
    const accounts = resources(plain.statelessTemplate, 'AWS::ApiGateway::Account');
    expect(accounts).toHaveLength(1);
    expect(JSON.stringify(accounts[0]?.[1].Properties.CloudWatchRoleArn)).toContain(plain.stateful.stackName);
    expect(plain.stateless.dependencies).toContain(plain.stateful);
  });

  test('contributor insights log only throttled keys, on every table and index', () => {
    for (const [, table] of resources(plain.statefulTemplate, 'AWS::DynamoDB::Table')) {
      expect(table.Properties.ContributorInsightsSpecification).toEqual({ Enabled: true, Mode: 'THROTTLED_KEYS' });
      for (const index of table.Properties.GlobalSecondaryIndexes as Array<Record<string, unknown>>) {
        expect(index.ContributorInsightsSpecification).toEqual({ Enabled: true, Mode: 'THROTTLED_KEYS' });
      }
    }
  });

  test(
    "the ledger's warm throughput comes from context, and only below-default values are refused",
    () => {
      const ledger = launch.statefulTemplate.toJSON().Resources[logicalId(launch.stateful.ledgerTable())];
      expect(ledger.Properties.WarmThroughput).toEqual({ ReadUnitsPerSecond: 30_000, WriteUnitsPerSecond: 10_000 });
      const plainLedger = plain.statefulTemplate.toJSON().Resources[logicalId(plain.stateful.ledgerTable())];
      expect(plainLedger.Properties.WarmThroughput).toBeUndefined();
      const attempt = (units: number) => () =>
        createApp({
          context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], ledgerWarmWriteUnits: String(units) },
        });
      expect(attempt(MIN_WARM_THROUGHPUT.writeUnitsPerSecond - 1)).toThrow(/ledgerWarmWriteUnits/);
      expect(attempt(MIN_WARM_THROUGHPUT.writeUnitsPerSecond)).not.toThrow();
    },
    SYNTH_TIMEOUT_MS,
  );
});

describe('the first day of real users', () => {
  test('without an SES identity the pool uses Cognito e-mail and synth warns; with one, the pool sends through SES', () => {
    expect(warnings(plain.outdir)).toContain('Annotation::live-gifting:no-ses-identity');
    const [, plainPool] = resources(plain.statefulTemplate, 'AWS::Cognito::UserPool')[0] ?? [];
    expect(plainPool?.Properties.EmailConfiguration).toBeUndefined();

    expect(warnings(launch.outdir)).not.toContain('Annotation::live-gifting:no-ses-identity');
    const [, pool] = resources(launch.statefulTemplate, 'AWS::Cognito::UserPool')[0] ?? [];
    const email = pool?.Properties.EmailConfiguration as Record<string, unknown>;
    expect(email.EmailSendingAccount).toBe('DEVELOPER');
    expect(email.From).toBe('no-reply@example.com');
    expect(JSON.stringify(email.SourceArn)).toContain('identity/example.com');
    expect(JSON.stringify(email.SourceArn)).toContain('eu-west-1');
    expect(() =>
      createApp({
        context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], sesFromEmail: 'no-reply@example.com' },
      }),
    ).toThrow(/sesRegion/);
  });

  test('a stage marked production without the onboarding URLs is refused at synth', () => {
    const attempt = (overrides: Record<string, unknown>) => () =>
      createApp({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], ...overrides } });
    expect(attempt({ production: 'true' })).toThrow(
      /production: set payoutOnboardingReturnUrl and payoutOnboardingRefreshUrl/,
    );
    expect(attempt({ production: 'true', payoutOnboardingReturnUrl: RETURN_URL })).toThrow(/payoutOnboarding/);
    expect(
      attempt({ payoutOnboardingReturnUrl: 'http://app.example.com/x', payoutOnboardingRefreshUrl: REFRESH_URL }),
    ).toThrow(/payoutOnboardingReturnUrl/);
    expect(attempt({ functionEnvironment: { PAYOUT_ONBOARDING_RETURN_URL: RETURN_URL } })).toThrow(
      /functionEnvironment/,
    );
  });

  test('the committed cdk.json still synthesizes, warning that onboarding has no URLs', () => {
    expect(warnings(plain.outdir)).toContain('Annotation::live-gifting:no-onboarding-urls');
    expect(warnings(launch.outdir)).not.toContain('Annotation::live-gifting:no-onboarding-urls');
  });

  test('the functions that call Stripe get the onboarding URLs; the others do not', () => {
    const functions = resources(launch.statelessTemplate, 'AWS::Lambda::Function');
    const withUrls = functions.filter(([, fn]) => variables(fn).PAYOUT_ONBOARDING_RETURN_URL !== undefined);
    expect(withUrls.map(([id]) => id)).toContain(
      logicalId(launch.stateless.functions.find((fn) => fn.name === 'PayoutAccountCreate')?.fn.function as IConstruct),
    );
    for (const [id, fn] of withUrls) {
      expect([id, variables(fn).PAYOUT_ONBOARDING_RETURN_URL, variables(fn).PAYOUT_ONBOARDING_REFRESH_URL]).toEqual([
        id,
        RETURN_URL,
        REFRESH_URL,
      ]);
      expect([id, variables(fn).STRIPE_SECRET_ARN !== undefined]).toEqual([id, true]);
    }
    expect(withUrls.length).toBeLessThan(functions.length);
  });
});
