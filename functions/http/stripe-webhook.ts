import { connectionPoster, connectionsStore, ledgerStore } from '../../shared/adapters/clients';
import { systemClock } from '../../shared/adapters/clock';
import { pushWallet } from '../../shared/adapters/connections-api';
import { stripePayments } from '../../shared/adapters/payments';
import { httpRoute, rawBody, type HttpEvent } from '../../shared/http/route';
import { handleStripeEvent } from '../../shared/usecases/stripe-webhook';

/**
 * POST /v1/webhooks/stripe: no bearer token; the Stripe-Signature header over the raw body
 * (base64-decoded when API Gateway encoded it) is the authentication, checked by the SDK.
 * Already-processed and ignored events answer 200 too, so Stripe stops retrying them.
 */
function signatureHeader(event: HttpEvent): string | undefined {
  for (const [name, value] of Object.entries(event.headers ?? {})) if (name.toLowerCase() === 'stripe-signature') return value;
  return undefined;
}

export const handler = httpRoute({
  auth: false,
  handle: async ({ event }) => {
    const payments = stripePayments();
    const verified = await payments.verifyWebhook(rawBody(event), signatureHeader(event));
    const store = ledgerStore();
    await handleStripeEvent(
      {
        store,
        payments,
        livemode: await payments.livemode(),
        now: () => systemClock.now(),
        notifyWallet: async (userId) => pushWallet({ connections: connectionsStore(), poster: connectionPoster() }, await store.readWallet(userId, { consistent: true })),
      },
      verified,
    );
    return { status: 200, body: { received: true } };
  },
});
