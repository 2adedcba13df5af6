import * as z from 'zod';
import { ledgerDeps } from '../../shared/adapters/clients';
import { offerAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { opaqueId } from '../../shared/http/schemas';
import { endOffer } from '../../shared/usecases/offers';
import { declaredHttpRoute } from '../../infra/routes';

/** POST /v1/operator/offers/{offerId}/end (operators): the offer stops applying now. */
export const handler = httpRoute(declaredHttpRoute('OperatorOffersEnd'), {
  path: z.object({ offerId: opaqueId }),
  response: { status: 200, schema: offerAnswer },
  handle: async ({ caller, path }) => ({
    status: 200,
    body: await endOffer(ledgerDeps(), caller, path.offerId),
  }),
});
