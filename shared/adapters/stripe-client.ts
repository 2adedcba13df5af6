import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import Stripe from 'stripe';
import * as z from 'zod';
import { awsConfig, stripeConfig } from '../config';
import { logger } from '../logger';
import { traced } from '../observability/tracing';

/**
 * The Stripe SDK client and the webhook secrets: from Secrets Manager on AWS, read again once
 * they are STRIPE_SECRET_MAX_AGE_SECONDS old (so a rotated key reaches warm instances within
 * minutes, without a redeploy); from the environment locally (where the SDK is pointed at the
 * payments stand-in). Secrets are never logged.
 */
export interface StripeSecrets {
  secretKey: string;
  webhookSecret: string;
  /** The signing secret of the connected-accounts endpoint (account.updated), when it has its own. */
  connectWebhookSecret?: string;
}

const secretJson = z.object({
  secretKey: z.string().startsWith('sk_'),
  webhookSecret: z.string().startsWith('whsec_'),
  connectWebhookSecret: z.string().startsWith('whsec_').optional(),
});

/**
 * A value fetched at most once per `maxAgeMs`: concurrent callers share one fetch; a failed
 * fetch is not cached (the next call tries again), and a failed refresh keeps serving the last
 * value rather than failing every payment while Secrets Manager is unreachable.
 */
export function maxAgeCache<T>(
  fetch: () => Promise<T>,
  maxAgeMs: () => number,
  now: () => number = Date.now,
): { get(): Promise<T>; reset(): void } {
  let current: { value: Promise<T>; fetchedAt: number } | undefined;
  let lastGood: T | undefined;
  return {
    get() {
      if (current && now() - current.fetchedAt < maxAgeMs()) return current.value;
      const fetchedAt = now();
      const value = fetch().then(
        (fresh) => {
          lastGood = fresh;
          return fresh;
        },
        (error: unknown) => {
          if (current?.value === value) current = undefined;
          if (lastGood !== undefined) {
            logger.warn('Stripe secret refresh failed; using the last value read', {
              error: error instanceof Error ? error.name : String(error),
            });
            return lastGood;
          }
          throw error;
        },
      );
      current = { value, fetchedAt };
      return value;
    },
    reset() {
      current = undefined;
      lastGood = undefined;
    },
  };
}

async function readSecrets(): Promise<StripeSecrets> {
  const config = stripeConfig();
  if (config.STRIPE_SECRET_KEY && config.STRIPE_WEBHOOK_SECRET) {
    return { secretKey: config.STRIPE_SECRET_KEY, webhookSecret: config.STRIPE_WEBHOOK_SECRET };
  }
  secretsManager ??= new SecretsManagerClient({ region: awsConfig().AWS_REGION });
  const result = await secretsManager.send(new GetSecretValueCommand({ SecretId: config.STRIPE_SECRET_ARN }));
  const parsed = secretJson.safeParse(JSON.parse(result.SecretString ?? '{}'));
  if (!parsed.success)
    throw new Error(
      'The Stripe secret must be JSON {"secretKey":"sk_...","webhookSecret":"whsec_...","connectWebhookSecret"?:"whsec_..."}',
    );
  const { connectWebhookSecret, ...required } = parsed.data;
  return { ...required, ...(connectWebhookSecret !== undefined && { connectWebhookSecret }) };
}

let secretsManager: SecretsManagerClient | undefined;
// Built at first use, not at import: a module-level call would keep the Secrets Manager client in
// every bundle that imports this file, also those that never read the secret (esbuild tree-shaking).
let secretsCache: ReturnType<typeof maxAgeCache<StripeSecrets>> | undefined;
export function stripeSecrets(): Promise<StripeSecrets> {
  // Read per call, though the secret itself is cached: locally, a handler whose access does not
  // name Stripe fails here as it would on AWS, instead of using a secret another handler read.
  stripeConfig();
  secretsCache ??= maxAgeCache(readSecrets, () => stripeConfig().STRIPE_SECRET_MAX_AGE_SECONDS * 1000);
  return secretsCache.get();
}

/** One SDK client per secret key: a rotated key gets a new client, the same key keeps its connections. */
let client: { secretKey: string; stripe: Stripe } | undefined;
export async function stripeClient(): Promise<Stripe> {
  const { secretKey } = await stripeSecrets();
  if (client?.secretKey === secretKey) return client.stripe;
  const config = stripeConfig();
  const stripe = new Stripe(secretKey, {
    timeout: config.STRIPE_TIMEOUT_MS,
    // Retries are ours (queue redelivery, bounded backoff); the SDK adds its own idempotency key otherwise.
    maxNetworkRetries: 1,
    ...(config.STRIPE_API_HOST && { host: config.STRIPE_API_HOST }),
    ...(config.STRIPE_API_PORT && { port: config.STRIPE_API_PORT }),
    ...(config.STRIPE_API_PROTOCOL && { protocol: config.STRIPE_API_PROTOCOL }),
    httpClient: tracedStripeHttpClient(Stripe.createNodeHttpClient()),
  });
  client = { secretKey, stripe };
  return stripe;
}

/** Each request to Stripe becomes an X-Ray subsegment `Stripe` (method, path without query, status). */
export function tracedStripeHttpClient(inner: Stripe.HttpClient): Stripe.HttpClient {
  class TracedHttpClient extends Stripe.HttpClient {
    override getClientName(): string {
      return inner.getClientName();
    }
    override makeRequest(
      ...args: Parameters<Stripe.HttpClient['makeRequest']>
    ): ReturnType<Stripe.HttpClient['makeRequest']> {
      const [host, port, path, method, , , protocol] = args;
      return traced(
        'Stripe',
        'remote',
        () => inner.makeRequest(...args),
        (response) => {
          const status = response?.getStatusCode();
          return {
            http: {
              request: { method, url: `${protocol}://${host}:${port}${path.split('?')[0] ?? ''}` },
              ...(status !== undefined && { response: { status } }),
            },
            ...(status !== undefined && { status }),
          };
        },
      );
    }
  }
  return new TracedHttpClient();
}

/** Forget the Stripe client and its cached keys, so the next use reads the secret again. */
export function forgetStripeClient(): void {
  secretsCache = undefined;
  client = undefined;
}
