import * as z from 'zod';
import { ledgerDeps } from '../../shared/adapters/clients';
import { CURRENCIES } from '../../shared/domain/money';
import { wardBudgetAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { userIdSchema } from '../../shared/http/schemas';
import { setWardBudget } from '../../shared/usecases/guardians';
import { MAX_MONTHLY_LIMIT_MINOR } from './wallet-budget';
import { declaredHttpRoute } from '../../infra/routes';

/** PUT /v1/wards/{teenId}/budget { monthlyLimit: {amount, currency} } -> 200 { teenId, monthlyLimit, setBy }. */
export const handler = httpRoute(declaredHttpRoute('WardBudget'), {
  path: z.object({ teenId: userIdSchema }),
  body: z.object({
    monthlyLimit: z.object({
      amount: z.number().int().min(0).max(MAX_MONTHLY_LIMIT_MINOR),
      currency: z.enum(CURRENCIES),
    }),
  }),
  response: { status: 200, schema: wardBudgetAnswer },
  handle: async ({ caller, path, body: input }) => ({
    status: 200,
    body: await setWardBudget(ledgerDeps(), caller, path.teenId, input.monthlyLimit),
  }),
});
