import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { casesPageAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { decodeCaseCursor, listOpenCases } from '../../shared/usecases/desk-cases';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/operator/cases?limit&cursor (operators): open support cases, oldest first. */
const query = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z
    .string()
    .max(1024)
    .refine((cursor) => decodeCaseCursor(cursor) !== undefined, 'not a cursor this API gave out')
    .optional(),
});

export const handler = httpRoute(declaredHttpRoute('OperatorCasesList'), {
  query,
  response: { status: 200, schema: casesPageAnswer },
  handle: async ({ query: page }) => ({ status: 200, body: await listOpenCases(ledgerStore(), page) }),
});
