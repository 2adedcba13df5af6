import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { payoutAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { opaqueId } from '../../shared/http/schemas';
import { getPayout } from '../../shared/usecases/payouts';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/payouts/{payoutId}: the caller's payout; anyone else's is NOT_FOUND. */
export const handler = httpRoute(declaredHttpRoute('PayoutsGet'), {
  path: z.object({ payoutId: opaqueId }),
  response: { status: 200, schema: payoutAnswer },
  handle: async ({ caller, path }) => ({
    status: 200,
    body: await getPayout({ store: ledgerStore() }, caller, path.payoutId),
  }),
});
