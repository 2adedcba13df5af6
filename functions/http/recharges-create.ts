import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { systemClock } from '../../shared/adapters/clock';
import { stripePayments } from '../../shared/adapters/payments';
import { pricingConfig } from '../../shared/config';
import { CURRENCIES } from '../../shared/domain/money';
import { PAYMENT_METHODS } from '../../shared/domain/payment-methods';
import { rechargeCreatedAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { opaqueId } from '../../shared/http/schemas';
import { createRecharge } from '../../shared/usecases/recharge';
import { metrics } from '../../shared/observability/metrics';
import { declaredHttpRoute } from '../../infra/routes';

/** URLs longer than this are not return addresses (browsers cap well above; Stripe's own limit is higher). */
const MAX_RETURN_URL_LENGTH = 2048;

/** POST /v1/recharges (idem): opens a Stripe PaymentIntent for a coin package; coins come with the webhook. */
const body = z.object({
  packageId: z.string().min(1).max(64),
  country: z
    .string()
    .regex(/^[A-Za-z]{2}$/, 'an ISO 3166-1 alpha-2 code')
    .optional(),
  /** How the customer pays (default card); GET /v1/packages lists the ones available. */
  method: z.enum(PAYMENT_METHODS).optional(),
  /** An open offer on this package, from GET /v1/packages. */
  offerId: opaqueId.optional(),
  /** Where a redirect method (PayPal) sends the customer back: http(s) only, never a script. */
  returnUrl: z
    .url({ protocol: /^https?$/ })
    .max(MAX_RETURN_URL_LENGTH)
    .optional(),
  /** The all-in total the client showed: the recharge is refused if it is not the one charged. */
  expectedTotal: z
    .object({ amount: z.number().int().nonnegative().max(100_000_000), currency: z.enum(CURRENCIES) })
    .optional(),
});

export const handler = httpRoute(declaredHttpRoute('RechargesCreate'), {
  body,
  response: { status: 201, schema: rechargeCreatedAnswer },
  handle: async ({ caller, body: input, idempotency }) => {
    const { pricing, returnUrl } = pricingConfig();
    const answer = await createRecharge(
      {
        store: ledgerStore(),
        payments: stripePayments(),
        now: () => systemClock.now(),
        pricing,
        defaultReturnUrl: returnUrl,
      },
      caller,
      input,
      idempotency,
    );
    if (!answer.replayed) metrics.count('Recharges', 1, { outcome: 'created' });
    return { status: answer.status, body: answer.body };
  },
});
