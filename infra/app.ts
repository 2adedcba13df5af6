import { Annotations, App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { PROJECT_ROOT } from './constructs/app-function';
import { MIN_WARM_THROUGHPUT, StatefulStack } from './stacks/stateful-stack';
import { StatelessStack } from './stacks/stateless-stack';

/**
 * The CDK app: `npx cdk synth` / `npx cdk deploy --all` run this file (cdk.json). Stacks are
 * environment-agnostic: they deploy to the account and region of the caller's credentials
 * (`AWS_REGION`/`AWS_PROFILE`), and synthesis needs neither credentials nor Docker.
 *
 * Context values (cdk.json or `-c key=value`), all optional:
 * - `oidcIssuer` + `oidcAudience` (+ `oidcJwksUrl`): trust an existing OIDC provider; without
 *   them the stateful stack creates a Cognito user pool and an app client.
 * - `stackNamePrefix`: default `LiveGifting`; a second prefix deploys a second, independent copy.
 * - `alarmEmail`: subscribed to the alarm topic.
 * - `corsAllowOrigins`: comma-separated browser origins allowed to call the HTTP API.
 * - `apiGatewayCloudWatchRole`: `false` when the account's API Gateway logging role is managed elsewhere.
 * - `functionEnvironment`: JSON object of extra configuration for every function, e.g. `{"CREATOR_SHARDS":"64"}`
 *   (shared/config.ts names; with `oidcIssuer`, also the claim names `CLAIM_COUNTRY` etc.).
 * - `sesFromEmail` (+ `sesFromName`, `sesVerifiedDomain`, `sesRegion`): the SES identity the user
 *   pool sends e-mail with; without it synth warns (Cognito's built-in e-mail is not for production).
 * - `production`: `true` for a stage real users reach; it refuses to synthesize without
 *   `payoutOnboardingReturnUrl` and `payoutOnboardingRefreshUrl` (Stripe onboarding needs them).
 * - `ledgerWarmReadUnits`, `ledgerWarmWriteUnits`: the ledger's warm throughput for a launch.
 */
export const ONBOARDING_URLS_MISSING_WARNING =
  'No payoutOnboardingReturnUrl/payoutOnboardingRefreshUrl: creators cannot finish Stripe onboarding on this stage. ' +
  'Fine for a test stage; a stage marked production=true refuses to synthesize without them (README, Deploying).';
const flag = z.union([z.boolean(), z.enum(['true', 'false']).transform((value) => value === 'true')]);
const list = z.union([
  z.array(z.string().min(1)),
  z.string().transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  ),
]);
/** Variables the stacks set themselves; extra configuration may not override them. */
const MANAGED_VARIABLES =
  /^(LEDGER_TABLE|CONNECTIONS_TABLE|.*_QUEUE_URL|STRIPE_SECRET_ARN|STRIPE_SECRET_KEY|STRIPE_WEBHOOK_SECRET|JWT_.*|WS_MANAGEMENT_ENDPOINT|LOCAL_.*|STRIPE_API_.*|.*_ENDPOINT|AWS_.*|NODE_OPTIONS|POWERTOOLS_METRICS_NAMESPACE)$/;
const environmentMap = z.record(
  z
    .string()
    .regex(/^[A-Z][A-Z0-9_]*$/, 'variable names are UPPER_SNAKE')
    .refine((name) => !MANAGED_VARIABLES.test(name), 'set by the stacks (or local-only); cannot be overridden'),
  z.string(),
);

export const appContext = z
  .object({
    oidcIssuer: z.url({ protocol: /^https$/ }).optional(),
    oidcAudience: z.string().min(1).optional(),
    oidcJwksUrl: z.url({ protocol: /^https$/ }).optional(),
    stackNamePrefix: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,63}$/)
      .default('LiveGifting'),
    alarmEmail: z.email().optional(),
    corsAllowOrigins: list.optional(),
    apiGatewayCloudWatchRole: flag.default(true),
    sesFromEmail: z.email().optional(),
    sesFromName: z.string().min(1).max(64).optional(),
    sesVerifiedDomain: z
      .string()
      .regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i)
      .optional(),
    sesRegion: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d$/)
      .optional(),
    production: flag.default(false),
    payoutOnboardingReturnUrl: z.url({ protocol: /^https$/ }).optional(),
    payoutOnboardingRefreshUrl: z.url({ protocol: /^https$/ }).optional(),
    ledgerWarmReadUnits: z.coerce.number().int().min(MIN_WARM_THROUGHPUT.readUnitsPerSecond).optional(),
    ledgerWarmWriteUnits: z.coerce.number().int().min(MIN_WARM_THROUGHPUT.writeUnitsPerSecond).optional(),
    functionEnvironment: z
      .union([
        environmentMap,
        z.string().transform((text, ctx) => {
          const parsed = environmentMap.safeParse(safeJson(text));
          if (!parsed.success) {
            ctx.addIssue({
              code: 'custom',
              message: `not a JSON object of UPPER_SNAKE names to strings: ${parsed.error.message}`,
            });
            return z.NEVER;
          }
          return parsed.data;
        }),
      ])
      .default({}),
  })
  .refine((context) => (context.oidcIssuer === undefined) === (context.oidcAudience === undefined), {
    message: 'set both oidcIssuer and oidcAudience, or neither (then the stack creates a Cognito user pool)',
  })
  // An OIDC provider may name its claims differently (CLAIM_COUNTRY etc.); the stack's own user
  // pool has fixed names (custom:country, ...) that the stack sets itself.
  .refine(
    (context) =>
      context.oidcIssuer !== undefined ||
      !Object.keys(context.functionEnvironment).some((name) => name.startsWith('CLAIM_')),
    {
      message:
        "functionEnvironment: CLAIM_* names apply to an oidcIssuer only; the Cognito user pool's claim names are set by the stack",
    },
  )
  .refine(
    (context) => !Object.keys(context.functionEnvironment).some((name) => name.startsWith('PAYOUT_ONBOARDING_')),
    {
      message:
        'functionEnvironment: set the onboarding URLs with payoutOnboardingReturnUrl and payoutOnboardingRefreshUrl',
    },
  )
  // The stacks are environment-agnostic, so the user pool cannot infer where the SES identity lives.
  .refine((context) => context.sesFromEmail === undefined || context.sesRegion !== undefined, {
    message: 'sesFromEmail: also set sesRegion, the region of the verified SES identity',
  })
  .refine(
    (context) =>
      (context.payoutOnboardingReturnUrl === undefined) === (context.payoutOnboardingRefreshUrl === undefined),
    {
      message: 'set both payoutOnboardingReturnUrl and payoutOnboardingRefreshUrl, or neither',
    },
  )
  // Stripe's account links need both URLs: without them no creator of a production stage could be paid.
  .refine(
    (context) =>
      !context.production ||
      (context.payoutOnboardingReturnUrl !== undefined && context.payoutOnboardingRefreshUrl !== undefined),
    {
      message:
        'production: set payoutOnboardingReturnUrl and payoutOnboardingRefreshUrl (https pages of your app where Stripe onboarding sends creators back)',
    },
  );
export type AppContext = z.infer<typeof appContext>;

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const CONTEXT_KEYS = [
  'oidcIssuer',
  'oidcAudience',
  'oidcJwksUrl',
  'stackNamePrefix',
  'alarmEmail',
  'corsAllowOrigins',
  'apiGatewayCloudWatchRole',
  'functionEnvironment',
  'sesFromEmail',
  'sesFromName',
  'sesVerifiedDomain',
  'sesRegion',
  'production',
  'payoutOnboardingReturnUrl',
  'payoutOnboardingRefreshUrl',
  'ledgerWarmReadUnits',
  'ledgerWarmWriteUnits',
] as const;

/** cdk.json's context (the feature flags): tests synthesize with exactly what the CLI uses. */
export function cdkJsonContext(): Record<string, unknown> {
  const parsed = z
    .object({ context: z.record(z.string(), z.unknown()) })
    .parse(JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')));
  return parsed.context;
}

export interface CreateAppOptions {
  /** Context for tests; the CLI passes cdk.json and `-c` values through the environment. */
  context?: Record<string, unknown>;
  outdir?: string;
}

export function createApp(options: CreateAppOptions = {}) {
  const app = new App({
    ...(options.context && { context: options.context }),
    ...(options.outdir && { outdir: options.outdir }),
  });
  const raw = Object.fromEntries(
    CONTEXT_KEYS.map((key) => [key, app.node.tryGetContext(key)]).filter(([, value]) => value !== undefined),
  );
  const parsed = appContext.safeParse(raw);
  if (!parsed.success) {
    throw new Error(
      `Invalid CDK context: ${parsed.error.issues.map((issue) => `${issue.path.join('.') || '(context)'}: ${issue.message}`).join('; ')}`,
    );
  }
  const context = parsed.data;

  const stateful = new StatefulStack(app, `${context.stackNamePrefix}Stateful`, {
    description: 'Live gifting: ledger and connections tables, queues with dead letters, Stripe secret, user pool',
    terminationProtection: true,
    ...(context.oidcIssuer &&
      context.oidcAudience && {
        oidc: {
          issuer: context.oidcIssuer,
          audience: context.oidcAudience,
          ...(context.oidcJwksUrl && { jwksUrl: context.oidcJwksUrl }),
        },
      }),
    ...(context.sesFromEmail && {
      ses: {
        fromEmail: context.sesFromEmail,
        ...(context.sesFromName && { fromName: context.sesFromName }),
        ...(context.sesVerifiedDomain && { verifiedDomain: context.sesVerifiedDomain }),
        ...(context.sesRegion && { region: context.sesRegion }),
      },
    }),
    ...((context.ledgerWarmReadUnits !== undefined || context.ledgerWarmWriteUnits !== undefined) && {
      ledgerWarmThroughput: {
        ...(context.ledgerWarmReadUnits !== undefined && { readUnitsPerSecond: context.ledgerWarmReadUnits }),
        ...(context.ledgerWarmWriteUnits !== undefined && { writeUnitsPerSecond: context.ledgerWarmWriteUnits }),
      },
    }),
    apiGatewayCloudWatchRole: context.apiGatewayCloudWatchRole,
  });
  const stateless = new StatelessStack(app, `${context.stackNamePrefix}Stateless`, {
    description: 'Live gifting: functions, HTTP and WebSocket APIs, schedules, alarms',
    stateful,
    functionEnvironment: context.functionEnvironment,
    ...(context.payoutOnboardingReturnUrl &&
      context.payoutOnboardingRefreshUrl && {
        payoutOnboarding: {
          returnUrl: context.payoutOnboardingReturnUrl,
          refreshUrl: context.payoutOnboardingRefreshUrl,
        },
      }),
    ...(context.alarmEmail && { alarmEmail: context.alarmEmail }),
    ...(context.corsAllowOrigins && { corsAllowOrigins: context.corsAllowOrigins }),
  });
  stateless.addStackDependency(stateful);
  if (!context.payoutOnboardingReturnUrl || !context.payoutOnboardingRefreshUrl) {
    Annotations.of(stateless).addWarningV2('live-gifting:no-onboarding-urls', ONBOARDING_URLS_MISSING_WARNING);
  }

  // cdk-nag 3 is a policy-validation plugin: synthesis fails on any unacknowledged error.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stateful, stateless, context };
}

if (require.main === module) {
  createApp().app.synth();
}
