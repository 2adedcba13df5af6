import * as z from 'zod';
import { ledgerDeps } from '../../shared/adapters/clients';
import { CURRENCIES } from '../../shared/domain/money';
import { walletAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { setBudget } from '../../shared/usecases/wallet-settings';
import { declaredHttpRoute } from '../../infra/routes';

/** A monthly budget above a million units of any currency is a typo, not a budget. */
export const MAX_MONTHLY_LIMIT_MINOR = 100_000_000;

/** PUT /v1/wallet/budget { monthlyLimit: {amount, currency} | null } -> the wallet. */
const body = z.object({
  monthlyLimit: z
    .object({ amount: z.number().int().min(0).max(MAX_MONTHLY_LIMIT_MINOR), currency: z.enum(CURRENCIES) })
    .nullable(),
});

export const handler = httpRoute(declaredHttpRoute('WalletBudget'), {
  body,
  response: { status: 200, schema: walletAnswer },
  handle: async ({ caller, body: input }) => ({
    status: 200,
    body: await setBudget(ledgerDeps(), caller, input.monthlyLimit),
  }),
});
