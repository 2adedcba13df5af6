import { ledgerStore } from '../../shared/adapters/clients';
import { httpRoute } from '../../shared/http/route';
import { listOffers } from '../../shared/usecases/offers';

/** GET /v1/operator/offers (operators): every offer, newest first, ended ones included. */
export const handler = httpRoute({
  auth: true,
  operator: true,
  handle: async () => ({ status: 200, body: { items: await listOffers(ledgerStore(), { consistent: true }) } }),
});
