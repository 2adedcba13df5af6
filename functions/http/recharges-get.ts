import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { rechargeAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { opaqueId } from '../../shared/http/schemas';
import { getRecharge } from '../../shared/usecases/recharge';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/recharges/{rechargeId}: the caller's own recharge; anyone else's is NOT_FOUND. */
export const handler = httpRoute(declaredHttpRoute('RechargesGet'), {
  path: z.object({ rechargeId: opaqueId }),
  response: { status: 200, schema: rechargeAnswer },
  handle: async ({ caller, path }) => ({
    status: 200,
    body: await getRecharge({ store: ledgerStore() }, caller, path.rechargeId),
  }),
});
