import { ledgerStore } from '../../shared/adapters/clients';
import { offersAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { listOffers } from '../../shared/usecases/offers';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/operator/offers (operators): every offer, newest first, ended ones included. */
export const handler = httpRoute(declaredHttpRoute('OperatorOffersList'), {
  response: { status: 200, schema: offersAnswer },
  handle: async () => ({ status: 200, body: { items: await listOffers(ledgerStore(), { consistent: true }) } }),
});
