import * as z from 'zod';
import { ledgerDeps } from '../../shared/adapters/clients';
import { reportCreatedAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { opaqueId } from '../../shared/http/schemas';
import { reportTransaction } from '../../shared/usecases/wallet-settings';
import { declaredHttpRoute } from '../../infra/routes';

/** A report is a few sentences for a support agent, not a document. */
export const MAX_REPORT_REASON_LENGTH = 2000;

/** POST /v1/wallet/transactions/{transactionId}/report { reason } -> 201 { reportId }; locks the wallet. */
export const handler = httpRoute(declaredHttpRoute('TransactionReportsCreate'), {
  path: z.object({ transactionId: opaqueId }),
  body: z.object({ reason: z.string().trim().min(1).max(MAX_REPORT_REASON_LENGTH) }),
  response: { status: 201, schema: reportCreatedAnswer },
  handle: async ({ caller, path, body: input }) => ({
    status: 201,
    body: await reportTransaction(ledgerDeps(), caller, path.transactionId, input.reason),
  }),
});
