import { AsyncLocalStorage } from 'node:async_hooks';
import * as z from 'zod';
import { DEFAULT_ECONOMY, type Economy } from './domain/economy';
import { PAYMENT_METHODS } from './domain/payment-methods';
import { checkPricingConfig, DEFAULT_PRICING, feesSchema, type PricingConfig } from './domain/pricing';

/**
 * Configuration is read from the environment once per cold start, validated with zod, and fails
 * fast with the names of the missing or malformed variables. Each function reads only the
 * sections it needs, so a payout worker does not need the WebSocket endpoint to start.
 */
export class ConfigError extends Error {
  constructor(section: string, issues: z.core.$ZodIssue[]) {
    super(
      `Invalid configuration (${section}): ${issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`,
    );
    this.name = 'ConfigError';
  }
}

const positiveInt = z.coerce.number().int().positive();
const booleanFlag = z.enum(['true', 'false']).transform((value) => value === 'true');

/**
 * The environment configuration is read from: the process's, except while the local runner runs a
 * handler with the environment its route's `access` grants (`withEnvironment`). On AWS every
 * function has a process, and so an environment, of its own; under `npm start` they share one.
 */
const scopedEnvironment = new AsyncLocalStorage<NodeJS.ProcessEnv>();
const currentEnvironment = (): NodeJS.ProcessEnv => scopedEnvironment.getStore() ?? process.env;

/** Runs `work` (and everything it starts) reading configuration from `environment` instead of the process's. */
export function withEnvironment<T>(environment: NodeJS.ProcessEnv, work: () => T): T {
  return scopedEnvironment.run(environment, work);
}

/** Parsed once per environment: one per cold start on AWS, one per handler's environment locally. */
function section<T extends z.ZodType>(name: string, schema: T): () => z.infer<T> {
  const parsedFor = new WeakMap<NodeJS.ProcessEnv, z.infer<T>>();
  return () => {
    const environment = currentEnvironment();
    if (parsedFor.has(environment)) return parsedFor.get(environment) as z.infer<T>;
    const parsed = schema.safeParse(environment);
    if (!parsed.success) throw new ConfigError(name, parsed.error.issues);
    parsedFor.set(environment, parsed.data);
    return parsed.data;
  };
}

/**
 * Forget the parsed sections, so the next read parses the environment again: the local stack sets
 * it after handlers may have loaded, and tests change it between cases.
 */
export const forgetConfig = (): void => {
  generation += 1;
  for (const reset of resetters) reset();
};
const resetters: Array<() => void> = [];
let generation = 0;
/** Counts forgetConfig calls: whoever derives an environment from the process's rebuilds it when this changes. */
export const configGeneration = (): number => generation;

function resettable<T extends z.ZodType>(name: string, schema: T): () => z.infer<T> {
  let loader = section(name, schema);
  resetters.push(() => (loader = section(name, schema)));
  return () => loader();
}

export const awsConfig = resettable(
  'aws',
  z.object({
    AWS_REGION: z.string().min(1).default('us-east-1'),
    /** Set only locally: DynamoDB Local's address. */
    DYNAMODB_ENDPOINT: z.url().optional(),
    /** Set only locally: the SQS emulator's address. */
    SQS_ENDPOINT: z.url().optional(),
  }),
);

export const tablesConfig = resettable(
  'tables',
  z.object({
    LEDGER_TABLE: z.string().min(1),
    CONNECTIONS_TABLE: z.string().min(1),
  }),
);

/**
 * Shard items a creator's diamonds, and partitions their gift entries, are spread over. Each gift
 * costs 4 write units on its entry partition (the gift_received record, then the broadcaster's
 * numbering, both transactional) and 2 on its credit shard. At 10,000 gifts/s to one creator,
 * 64 partitions take 10,000 / 64 x 4 = 625 WCU/s each, under DynamoDB's 1,000 per key with room
 * for hash imbalance; 32 took 1,250. A stream's end fences every shard in one transaction, so
 * this stays under MAX_FENCED_SHARDS (98).
 */
export const DEFAULT_CREATOR_SHARDS = 64;

export const ledgerConfig = resettable(
  'ledger',
  z
    .object({
      /** Shard items a creator's diamonds are spread over (docs/DESIGN.md, Creator balances). */
      CREATOR_SHARDS: positiveInt.max(256).default(DEFAULT_CREATOR_SHARDS),
      DIAMONDS_PER_COIN_BPS: positiveInt.default(DEFAULT_ECONOMY.diamondsPerCoinBps),
      PAYOUT_CENTS_PER_DIAMOND_BPS: positiveInt.default(DEFAULT_ECONOMY.payoutCentsPerDiamondBps),
      MIN_PAYOUT_DIAMONDS: positiveInt.default(DEFAULT_ECONOMY.minPayoutDiamonds),
      MAX_PAYOUT_DIAMONDS_PER_DAY: positiveInt.default(DEFAULT_ECONOMY.maxPayoutDiamondsPerDay),
    })
    .transform((env) => ({
      creatorShards: env.CREATOR_SHARDS,
      economy: {
        diamondsPerCoinBps: env.DIAMONDS_PER_COIN_BPS,
        payoutCentsPerDiamondBps: env.PAYOUT_CENTS_PER_DIAMOND_BPS,
        minPayoutDiamonds: env.MIN_PAYOUT_DIAMONDS,
        maxPayoutDiamondsPerDay: env.MAX_PAYOUT_DIAMONDS_PER_DAY,
      } satisfies Economy,
    })),
);

export const authConfig = resettable(
  'auth',
  z.object({
    JWT_ISSUER: z.string().min(1),
    JWT_AUDIENCE: z.string().min(1),
    /** The issuer's JWKS; defaults to OIDC discovery's usual place. */
    JWT_JWKS_URL: z.url().optional(),
    CLAIM_BIRTHDATE: z.string().min(1).default('birthdate'),
    CLAIM_COUNTRY: z.string().min(1).default('country'),
    CLAIM_PARENTAL_CONSENT: z.string().min(1).default('parental_consent'),
  }),
);

/** Claim names only: HTTP handlers read claims the API Gateway JWT authorizer already verified. */
export const claimsConfig = resettable(
  'claims',
  z.object({
    CLAIM_BIRTHDATE: z.string().min(1).default('birthdate'),
    CLAIM_COUNTRY: z.string().min(1).default('country'),
    CLAIM_PARENTAL_CONSENT: z.string().min(1).default('parental_consent'),
    /** The claim that lists the user's groups (Cognito's user-pool groups by default). */
    CLAIM_GROUPS: z.string().min(1).default('cognito:groups'),
    /** The group whose members are operators (shared/auth/operators.ts). */
    OPERATOR_GROUP: z.string().min(1).default('operators'),
  }),
);

export const rateLimitConfig = resettable(
  'rateLimit',
  z.object({
    /** Per-user token bucket on writes (every POST/PUT, sendGift, join); the defaults allow 50/s with bursts of 200 (docs/API.md). */
    RATE_LIMIT_PER_SECOND: positiveInt.default(50),
    RATE_LIMIT_BURST: positiveInt.default(200),
  }),
);

export const readRateLimitConfig = resettable(
  'readRateLimit',
  z.object({
    /** Per-user token bucket on authenticated reads (GET, WebSocket ping): higher than writes. */
    RATE_LIMIT_READ_PER_SECOND: positiveInt.default(100),
    RATE_LIMIT_READ_BURST: positiveInt.default(300),
  }),
);

export const sharedRateLimitConfig = resettable(
  'sharedRateLimit',
  z.object({
    /**
     * The cross-instance ceiling's window: per user and class, all instances together take at most
     * burst + perSecond x window requests in one window (a DynamoDB counter per window).
     */
    RATE_LIMIT_WINDOW_SECONDS: positiveInt.max(3600).default(60),
    /**
     * An instance adds a user's requests to the shared counter once per this many, in one write:
     * a user's requests cost 1/batch of a write unit, and an instance can pass the ceiling by at
     * most batch - 1 per window. 1 checks every request.
     */
    RATE_LIMIT_SHARED_BATCH: positiveInt.max(1000).default(10),
  }),
);

export const webSocketLimitsConfig = resettable(
  'webSocketLimits',
  z.object({
    /** Open WebSocket connections one user may hold at once; the next is refused with 429 at the upgrade. */
    WS_MAX_CONNECTIONS_PER_USER: positiveInt.max(1000).default(5),
    /**
     * Connections of one user that watch the same stream. Past it, the user's oldest one there
     * leaves the stream (a newer tab takes the room over), so by default a stream's viewers are
     * its distinct users.
     */
    WS_MAX_CONNECTIONS_PER_USER_PER_STREAM: positiveInt.max(1000).default(1),
  }),
);

export const localConfig = resettable(
  'local',
  z.object({
    /** Only the local stack sets this; the /dev routes refuse to run without it. */
    LOCAL_STACK: booleanFlag.default(false),
  }),
);

export const webSocketConfig = resettable(
  'webSocket',
  z.object({
    /** The @connections endpoint: https://{api-id}.execute-api.{region}.amazonaws.com/{stage} on AWS. */
    WS_MANAGEMENT_ENDPOINT: z.url(),
  }),
);

export const stripeConfig = resettable(
  'stripe',
  z
    .object({
      /** On AWS: a Secrets Manager secret holding {"secretKey":"sk_...","webhookSecret":"whsec_..."}. */
      STRIPE_SECRET_ARN: z.string().min(1).optional(),
      /** Locally: the values themselves (generated by the local stack, never logged). */
      STRIPE_SECRET_KEY: z.string().startsWith('sk_').optional(),
      STRIPE_WEBHOOK_SECRET: z.string().startsWith('whsec_').optional(),
      /** Locally: where the payments stand-in listens (the real SDK is pointed at it). */
      STRIPE_API_HOST: z.string().min(1).optional(),
      STRIPE_API_PORT: z.coerce.number().int().positive().optional(),
      STRIPE_API_PROTOCOL: z.enum(['http', 'https']).optional(),
      /** Stripe's own default is 80 s; a Lambda should give up sooner and let the queue retry. */
      STRIPE_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
      /** How long a Stripe secret read from Secrets Manager is used before it is read again (rotation). */
      STRIPE_SECRET_MAX_AGE_SECONDS: z.coerce.number().int().min(1).max(3600).default(300),
    })
    .refine(
      (env) =>
        env.STRIPE_SECRET_ARN !== undefined ||
        (env.STRIPE_SECRET_KEY !== undefined && env.STRIPE_WEBHOOK_SECRET !== undefined),
      {
        message: 'set STRIPE_SECRET_ARN (AWS) or STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET (local)',
      },
    ),
);

export const queuesConfig = resettable(
  'queues',
  z.object({
    PAYOUTS_QUEUE_URL: z.string().min(1).optional(),
    GIFT_EVENTS_QUEUE_URL: z.string().min(1).optional(),
  }),
);

export const payoutsConfig = resettable(
  'payouts',
  z.object({
    /** A payout still `requested` this long after its last touch lost its message: the sweeper sends it again. */
    PAYOUT_SWEEP_REQUESTED_AFTER_SECONDS: positiveInt.default(10),
    /** A payout `processing` this long without progress is sent again (docs/API.md: paid within 60 s of a restart). */
    PAYOUT_SWEEP_PROCESSING_AFTER_SECONDS: positiveInt.default(30),
    /** Where Stripe's onboarding sends the creator back; unset locally (the stand-in shows its own page). */
    PAYOUT_ONBOARDING_RETURN_URL: z.url().optional(),
    PAYOUT_ONBOARDING_REFRESH_URL: z.url().optional(),
  }),
);

export const broadcastConfig = resettable(
  'broadcast',
  z.object({
    /**
     * @connections posts a second that one room's broadcasts may use (README, "Fan-out budget"):
     * below API Gateway's 10,000 requests/s per account and region, which every HTTP route,
     * WebSocket route and post shares. A room whose viewers x 2 frames/s would pass it gets
     * coarser frames (fewer a second), never 429s on the other APIs.
     */
    BROADCAST_POSTS_PER_SECOND: positiveInt.default(5_000),
    /** Posts in flight per fan-out worker, and connections per worker slice of a big room. */
    BROADCAST_POST_CONCURRENCY: positiveInt.default(100),
    BROADCAST_SLICE_CONNECTIONS: positiveInt.default(1_000),
  }),
);

/** A JSON document in an environment variable, parsed before its schema sees it. */
function jsonText<T extends z.ZodType>(schema: T) {
  return z
    .string()
    .transform((text, context) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        context.addIssue({ code: 'custom', message: 'not valid JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);
}

/**
 * Payment methods and fees (shared/domain/pricing.ts, docs/PAYMENTS.md). The defaults are
 * card only and no fees: every price is the price list's. A method the Stripe account cannot take
 * (PayPal outside Europe, or on a Connect platform Stripe has not approved) and a card surcharge
 * in the EEA or the UK are refused here, at cold start.
 */
export const pricingConfig = resettable(
  'pricing',
  z
    .object({
      /** Comma-separated, in the order the catalog lists them: `card` or `card,paypal`. */
      PAYMENT_METHODS: z
        .string()
        .default('card')
        .transform((value) => value.split(',').map((method) => method.trim()))
        .pipe(z.array(z.enum(PAYMENT_METHODS)).min(1)),
      /** The platform's Stripe account's country (ISO 3166-1 alpha-2). */
      STRIPE_PLATFORM_COUNTRY: z
        .string()
        .regex(/^[A-Z]{2}$/)
        .default(DEFAULT_PRICING.platformCountry),
      STRIPE_PAYPAL_CONNECT_APPROVED: booleanFlag.default(false),
      /** `{"platform":{"*":0,"US":25},"methods":{"paypal":{"*":30}}}`: minor units, per country or `*`. */
      PRICING_FEES: jsonText(feesSchema).default(DEFAULT_PRICING.fees),
      /** Where a redirect method (PayPal) sends the customer back when the request names no `returnUrl`. */
      PAYMENT_RETURN_URL: z.url().optional(),
    })
    .transform((env) => ({
      pricing: {
        methods: [...new Set(env.PAYMENT_METHODS)],
        platformCountry: env.STRIPE_PLATFORM_COUNTRY,
        paypalConnectApproved: env.STRIPE_PAYPAL_CONNECT_APPROVED,
        fees: env.PRICING_FEES,
      } satisfies PricingConfig,
      returnUrl: env.PAYMENT_RETURN_URL,
    }))
    .superRefine((config, context) => {
      for (const problem of checkPricingConfig(config.pricing)) context.addIssue({ code: 'custom', message: problem });
    }),
);
