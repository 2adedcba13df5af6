import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { systemClock } from '../../shared/adapters/clock';
import { newId } from '../../shared/adapters/ids';
import { payoutQueue } from '../../shared/adapters/payout-queue';
import { ledgerConfig } from '../../shared/config';
import { payoutRequestedAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { requestPayout } from '../../shared/usecases/payouts';
import { declaredHttpRoute } from '../../infra/routes';

/**
 * Larger requests are refused as malformed: far above any daily maximum, and small enough that
 * diamonds x rate stays a safe integer when the cents are computed.
 */
const MAX_DIAMONDS_IN_REQUEST = 1_000_000_000_000;

const body = z.object({ diamonds: z.number().int().min(1).max(MAX_DIAMONDS_IN_REQUEST) });

/** POST /v1/payouts { diamonds } (idempotent): 202, the transfer is made by the queue worker. */
export const handler = httpRoute(declaredHttpRoute('PayoutsCreate'), {
  body,
  response: { status: 202, schema: payoutRequestedAnswer },
  handle: async ({ caller, body: input, idempotency }) => {
    const answer = await requestPayout(
      {
        store: ledgerStore(),
        queue: payoutQueue(),
        economy: ledgerConfig().economy,
        now: () => systemClock.now(),
        newId,
      },
      caller,
      { diamonds: input.diamonds },
      idempotency,
    );
    return { status: answer.status, body: answer.body };
  },
});
