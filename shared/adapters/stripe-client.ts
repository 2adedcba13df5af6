import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import Stripe from 'stripe';
import * as z from 'zod';
import { awsConfig, stripeConfig } from '../config';

/**
 * The Stripe SDK client and the webhook secret, resolved once per cold start: from Secrets
 * Manager on AWS, from the environment locally (where the SDK is pointed at the payments
 * stand-in). Secrets are never logged.
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

let secrets: Promise<StripeSecrets> | undefined;
export function stripeSecrets(): Promise<StripeSecrets> {
  secrets ??= (async () => {
    const config = stripeConfig();
    if (config.STRIPE_SECRET_KEY && config.STRIPE_WEBHOOK_SECRET) {
      return { secretKey: config.STRIPE_SECRET_KEY, webhookSecret: config.STRIPE_WEBHOOK_SECRET };
    }
    const client = new SecretsManagerClient({ region: awsConfig().AWS_REGION });
    const result = await client.send(new GetSecretValueCommand({ SecretId: config.STRIPE_SECRET_ARN }));
    const parsed = secretJson.safeParse(JSON.parse(result.SecretString ?? '{}'));
    if (!parsed.success) throw new Error('The Stripe secret must be JSON {"secretKey":"sk_...","webhookSecret":"whsec_...","connectWebhookSecret"?:"whsec_..."}');
    const { connectWebhookSecret, ...required } = parsed.data;
    return { ...required, ...(connectWebhookSecret !== undefined && { connectWebhookSecret }) };
  })().catch((error: unknown) => {
    secrets = undefined; // let the next invocation try again rather than caching a failure
    throw error;
  });
  return secrets;
}

let client: Promise<Stripe> | undefined;
export function stripeClient(): Promise<Stripe> {
  client ??= stripeSecrets().then(({ secretKey }) => {
    const config = stripeConfig();
    return new Stripe(secretKey, {
      timeout: config.STRIPE_TIMEOUT_MS,
      // Retries are ours (queue redelivery, bounded backoff); the SDK adds its own idempotency key otherwise.
      maxNetworkRetries: 1,
      ...(config.STRIPE_API_HOST && { host: config.STRIPE_API_HOST }),
      ...(config.STRIPE_API_PORT && { port: config.STRIPE_API_PORT }),
      ...(config.STRIPE_API_PROTOCOL && { protocol: config.STRIPE_API_PROTOCOL }),
    });
  });
  return client;
}

export function resetStripeForTests(): void {
  secrets = undefined;
  client = undefined;
}
