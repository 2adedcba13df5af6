import * as z from 'zod';
import { ledgerDeps } from '../../shared/adapters/clients';
import { walletAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { setLock } from '../../shared/usecases/wallet-settings';
import { declaredHttpRoute } from '../../infra/routes';

/** PUT /v1/wallet/lock { locked } -> the wallet; a dispute lock cannot be lifted by its owner (423). */
export const handler = httpRoute(declaredHttpRoute('WalletLock'), {
  body: z.object({ locked: z.boolean() }),
  response: { status: 200, schema: walletAnswer },
  handle: async ({ caller, body: input }) => ({
    status: 200,
    body: await setLock(ledgerDeps(), caller, input.locked),
  }),
});
