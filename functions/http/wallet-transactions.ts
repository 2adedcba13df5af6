import { ledgerStore } from '../../shared/adapters/clients';
import { transactionsPageAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { pageQuery } from '../../shared/http/schemas';
import { listTransactions } from '../../shared/usecases/wallet';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/wallet/transactions?limit&cursor: the caller's entries, newest first. */
export const handler = httpRoute(declaredHttpRoute('WalletTransactions'), {
  // One query per creator shard: weighs more against the caller's read limit.
  query: pageQuery,
  response: { status: 200, schema: transactionsPageAnswer },
  handle: async ({ caller, query }) => ({
    status: 200,
    body: await listTransactions({ store: ledgerStore() }, caller, {
      limit: query.limit,
      ...(query.cursor !== undefined && { cursor: query.cursor }),
    }),
  }),
});
