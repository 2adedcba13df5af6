import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { caseDetailAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { opaqueId } from '../../shared/http/schemas';
import { getCaseDetail } from '../../shared/usecases/desk-cases';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/operator/cases/{caseId} (operators): the case, its wallet, its transaction and the ledger around it. */
export const handler = httpRoute(declaredHttpRoute('OperatorCasesGet'), {
  path: z.object({ caseId: opaqueId }),
  response: { status: 200, schema: caseDetailAnswer },
  handle: async ({ path }) => ({ status: 200, body: await getCaseDetail(ledgerStore(), path.caseId) }),
});
