import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { payoutsPageAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { decodePayoutCursor, listPayouts, MAX_PAYOUT_PAGE } from '../../shared/usecases/payouts';
import { declaredHttpRoute } from '../../infra/routes';

/** The page size when the client names none. */
const DEFAULT_PAYOUT_PAGE = 50;

const query = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAYOUT_PAGE).default(DEFAULT_PAYOUT_PAGE),
  cursor: z
    .string()
    .max(1024)
    .refine((cursor) => decodePayoutCursor(cursor) !== undefined, 'not a cursor this API gave out')
    .optional(),
});

/** GET /v1/payouts?limit&cursor: the caller's payouts, newest first. */
export const handler = httpRoute(declaredHttpRoute('PayoutsList'), {
  query,
  response: { status: 200, schema: payoutsPageAnswer },
  handle: async ({ caller, query: page }) => ({
    status: 200,
    body: await listPayouts({ store: ledgerStore() }, caller, {
      limit: page.limit,
      ...(page.cursor !== undefined && { cursor: page.cursor }),
    }),
  }),
});
