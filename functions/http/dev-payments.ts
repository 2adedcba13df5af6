import * as z from 'zod';
import { NotFoundError, TransientDependencyError, ValidationError } from '../../shared/domain/errors';
import { devPaymentAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { declaredHttpRoute } from '../../infra/routes';

/**
 * POST /dev/payments/{paymentIntentId}/{succeed|fail|cancel|dispute|refund|win-dispute|lose-dispute}
 * (local stack only): asks the
 * payments stand-in to play the customer's side; it then sends the matching signed event to the
 * webhook route, as Stripe would. Refuses to run outside the local stack.
 */
const environment = z.object({ LOCAL_STACK: z.literal('true'), PAYMENTS_STANDIN_URL: z.url() });

/** What the customer's side can do to a payment, as `stripe trigger` would. */
export const DEV_PAYMENT_ACTIONS = [
  'succeed',
  'fail',
  'cancel',
  'dispute',
  'refund',
  'win-dispute',
  'lose-dispute',
  // A redirect method's page (PayPal), as the customer would click it: approve, approve with a
  // late settlement (then `succeed` or `fail`), or cancel.
  'redirect-approve',
  'redirect-approve-late',
  'redirect-cancel',
] as const;
const ACTIONS_WITH_AMOUNT: ReadonlySet<string> = new Set(['refund', 'dispute']);

/** The stand-in answers at once, after one delivery attempt; give it room for a slow webhook. */
const STANDIN_TIMEOUT_MS = 15_000;

const standInAnswer = z.object({
  eventId: z.string(),
  delivered: z.boolean(),
  status: z.number().int().nullable().optional(),
});
const standInError = z.object({ error: z.object({ message: z.string() }) });

export const handler = httpRoute(declaredHttpRoute('DevPayments'), {
  path: z.object({
    paymentIntentId: z.string().regex(/^pi_[A-Za-z0-9_]{1,64}$/, 'a PaymentIntent id (pi_...)'),
    action: z.enum(DEV_PAYMENT_ACTIONS),
  }),
  // /dev routes accept an empty body; a refund or a dispute may name a partial amount.
  body: z.object({ amount: z.number().int().positive().optional() }).optional(),
  response: { status: 200, schema: devPaymentAnswer },
  handle: async ({ path, body }) => {
    const env = environment.safeParse(process.env);
    if (!env.success) throw new NotFoundError('No such route.');
    const url = `${env.data.PAYMENTS_STANDIN_URL}/_standin/payments/${encodeURIComponent(path.paymentIntentId)}/${path.action}`;
    const forwarded =
      ACTIONS_WITH_AMOUNT.has(path.action) && body?.amount !== undefined ? JSON.stringify({ amount: body.amount }) : '';
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: forwarded,
      signal: AbortSignal.timeout(STANDIN_TIMEOUT_MS),
    });
    const answer: unknown = await response.json().catch(() => undefined);
    if (response.ok) {
      const parsed = standInAnswer.safeParse(answer);
      if (!parsed.success) throw new TransientDependencyError('the payments stand-in answered in an unexpected shape');
      return { status: 200, body: { eventId: parsed.data.eventId, delivered: parsed.data.delivered } };
    }
    const message =
      standInError.safeParse(answer).data?.error.message ?? `the payments stand-in answered ${response.status}`;
    if (response.status === 404) throw new NotFoundError(message);
    if (response.status === 400 || response.status === 409) throw new ValidationError(message);
    throw new TransientDependencyError(message);
  },
});
