import { ledgerStore } from '../../shared/adapters/clients';
import { httpRoute } from '../../shared/http/route';
import { getPayoutAccount } from '../../shared/usecases/payout-account';

/** GET /v1/creator/payout-account: 200 with the account, or 404 before one is linked. */
export const handler = httpRoute({
  auth: true,
  handle: async ({ caller }) => ({ status: 200, body: await getPayoutAccount({ store: ledgerStore() }, caller) }),
});
