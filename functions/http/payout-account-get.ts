import { ledgerStore } from '../../shared/adapters/clients';
import { payoutAccountAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { getPayoutAccount } from '../../shared/usecases/payout-account';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/creator/payout-account: 200 with the account, or 404 before one is linked. */
export const handler = httpRoute(declaredHttpRoute('PayoutAccountGet'), {
  response: { status: 200, schema: payoutAccountAnswer },
  handle: async ({ caller }) => ({ status: 200, body: await getPayoutAccount({ store: ledgerStore() }, caller) }),
});
