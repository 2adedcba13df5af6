import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { systemClock } from '../../shared/adapters/clock';
import { stripePayments } from '../../shared/adapters/payments';
import { httpRoute } from '../../shared/http/route';
import { createRecharge } from '../../shared/usecases/recharge';
import { metrics } from '../../shared/observability/metrics';

/** POST /v1/recharges (idem): opens a Stripe PaymentIntent for a coin package; coins come with the webhook. */
const body = z.object({
  packageId: z.string().min(1).max(64),
  country: z
    .string()
    .regex(/^[A-Za-z]{2}$/, 'an ISO 3166-1 alpha-2 code')
    .optional(),
});

export const handler = httpRoute({
  auth: true,
  idempotent: true,
  body,
  handle: async ({ caller, body: input, idempotency }) => {
    const answer = await createRecharge(
      { store: ledgerStore(), payments: stripePayments(), now: () => systemClock.now() },
      caller,
      input,
      idempotency,
    );
    if (!answer.replayed) metrics.count('Recharges', 1, { outcome: 'created' });
    return { status: answer.status, body: answer.body };
  },
});
