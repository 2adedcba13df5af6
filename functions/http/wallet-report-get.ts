import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { reportAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { opaqueId } from '../../shared/http/schemas';
import { getReportStatus } from '../../shared/usecases/desk';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/wallet/reports/{reportId}: the caller's own report, open or resolved with its outcome. */
export const handler = httpRoute(declaredHttpRoute('TransactionReportsGet'), {
  path: z.object({ reportId: opaqueId }),
  response: { status: 200, schema: reportAnswer },
  handle: async ({ caller, path }) => ({
    status: 200,
    body: await getReportStatus(ledgerStore(), caller, path.reportId),
  }),
});
