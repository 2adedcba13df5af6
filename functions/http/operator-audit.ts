import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { auditPageAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { decodeAuditCursor, listAudit } from '../../shared/usecases/audit';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/operator/audit (operators): every operator change, newest first. */
const query = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z
    .string()
    .max(1024)
    .refine((cursor) => decodeAuditCursor(cursor) !== undefined, 'not a cursor this API gave out')
    .optional(),
});

export const handler = httpRoute(declaredHttpRoute('OperatorAudit'), {
  query,
  response: { status: 200, schema: auditPageAnswer },
  handle: async ({ query: page }) => ({ status: 200, body: await listAudit(ledgerStore(), page) }),
});
