import * as z from 'zod';
import { connectionPoster, connectionsStore, ledgerStore } from '../../shared/adapters/clients';
import { systemClock } from '../../shared/adapters/clock';
import { pushWallet } from '../../shared/adapters/connections-api';
import { newId } from '../../shared/adapters/ids';
import { stripePayments } from '../../shared/adapters/payments';
import { webhookAnswer } from '../../shared/http/answers';
import { httpRoute, rawBody, type HttpEvent } from '../../shared/http/route';
import { ValidationError } from '../../shared/domain/errors';
import { metrics, UNVERIFIED_EVENT_TYPE } from '../../shared/observability/metrics';
import { handleStripeEvent, type WebhookOutcome } from '../../shared/usecases/stripe-webhook';
import { declaredHttpRoute } from '../../infra/routes';

/**
 * POST /v1/webhooks/stripe: no bearer token; the Stripe-Signature header over the raw body
 * (base64-decoded when API Gateway encoded it) is the authentication, checked by the SDK.
 * Already-processed and ignored events answer 200 too, so Stripe stops retrying them.
 */
const SIGNATURE_HEADER = 'Stripe-Signature';

function signatureHeader(event: HttpEvent): string | undefined {
  for (const [name, value] of Object.entries(event.headers ?? {}))
    if (name.toLowerCase() === SIGNATURE_HEADER.toLowerCase()) return value;
  return undefined;
}

/** Only the type is read here, for the metric; the use case parses the whole event. */
const eventType = z.object({ type: z.string().max(100) });

async function verified(event: HttpEvent): Promise<unknown> {
  try {
    return await stripePayments().verifyWebhook(rawBody(event), signatureHeader(event));
  } catch (error) {
    // A missing, malformed, wrong or stale signature: a misconfigured secret or a forger.
    if (error instanceof ValidationError)
      metrics.count('WebhookEvents', 1, { type: UNVERIFIED_EVENT_TYPE, outcome: 'signature_failed' });
    throw error;
  }
}

/** The webhook outcomes that settle a recharge one way or another, counted as recharges by outcome too. */
const RECHARGE_OUTCOMES: ReadonlySet<WebhookOutcome> = new Set([
  'credited',
  'declined',
  'canceled',
  'refunded_over_budget',
]);

/** Counts each event by type and outcome; recharges that the event settled count by outcome too. */
function countEvent(stripeEvent: unknown, outcome: WebhookOutcome): void {
  const type = eventType.safeParse(stripeEvent);
  metrics.count('WebhookEvents', 1, { type: type.success ? type.data.type : 'unknown', outcome });
  if (RECHARGE_OUTCOMES.has(outcome)) metrics.count('Recharges', 1, { outcome });
  if (outcome === 'livemode_mismatch') metrics.count('WebhookLivemodeMismatches', 1);
}

export const handler = httpRoute(declaredHttpRoute('StripeWebhook'), {
  signedBody: { header: SIGNATURE_HEADER },
  response: { status: 200, schema: webhookAnswer },
  handle: async ({ event }) => {
    const payments = stripePayments();
    const stripeEvent = await verified(event);
    const store = ledgerStore();
    const outcome = await handleStripeEvent(
      {
        store,
        payments,
        livemode: await payments.livemode(),
        now: () => systemClock.now(),
        newId,
        notifyWallet: async (userId) =>
          pushWallet(
            { connections: connectionsStore(), poster: connectionPoster() },
            await store.readWallet(userId, { consistent: true }),
          ),
      },
      stripeEvent,
    );
    countEvent(stripeEvent, outcome);
    return { status: 200, body: { received: true } };
  },
});
