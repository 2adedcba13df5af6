import { ledgerDeps } from '../../shared/adapters/clients';
import { walletAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { getWallet } from '../../shared/usecases/wallet';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/wallet: balances and budget; a user who never recharged gets zeros. */
export const handler = httpRoute(declaredHttpRoute('WalletGet'), {
  response: { status: 200, schema: walletAnswer },
  handle: async ({ caller }) => ({
    status: 200,
    body: await getWallet(ledgerDeps(), caller),
  }),
});
