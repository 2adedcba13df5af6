import { ledgerStore } from '../../shared/adapters/clients';
import { httpRoute } from '../../shared/http/route';
import { pageQuery } from '../../shared/http/schemas';
import { listTransactions } from '../../shared/usecases/wallet';

/** GET /v1/wallet/transactions?limit&cursor: the caller's entries, newest first. */
export const handler = httpRoute({
  auth: true,
  query: pageQuery,
  handle: async ({ caller, query }) => ({
    status: 200,
    body: await listTransactions({ store: ledgerStore() }, caller, {
      limit: query.limit,
      ...(query.cursor !== undefined && { cursor: query.cursor }),
    }),
  }),
});
