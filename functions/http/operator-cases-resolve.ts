import * as z from 'zod';
import { ledgerDeps } from '../../shared/adapters/clients';
import { stripePayments } from '../../shared/adapters/payments';
import { caseResolvedAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { opaqueId } from '../../shared/http/schemas';
import { LOCK_DECISIONS } from '../../shared/usecases/desk-cases';
import {
  MAX_DESK_NOTE_LENGTH,
  MAX_DESK_REASON_LENGTH,
  MAX_DESK_REFUNDS,
  resolveCase,
} from '../../shared/usecases/desk';
import { declaredHttpRoute } from '../../infra/routes';

/** The body of a resolution: refunds of the case's wallet's recharges (each at most once), the lock, and why. */
export const resolveBody = z
  .object({
    refunds: z
      .array(z.object({ rechargeId: opaqueId }).strict())
      .max(MAX_DESK_REFUNDS)
      .refine(
        (refunds) => new Set(refunds.map((refund) => refund.rechargeId)).size === refunds.length,
        'a recharge is named twice',
      )
      .default([]),
    lock: z.enum(LOCK_DECISIONS),
    note: z.string().trim().max(MAX_DESK_NOTE_LENGTH),
    reason: z.string().trim().min(1).max(MAX_DESK_REASON_LENGTH),
  })
  .strict();

/** POST /v1/operator/cases/{caseId}/resolve (operators, Idempotency-Key): refunds, lock, note; the case closes. */
export const handler = httpRoute(declaredHttpRoute('OperatorCasesResolve'), {
  path: z.object({ caseId: opaqueId }),
  body: resolveBody,
  response: { status: 200, schema: caseResolvedAnswer },
  handle: async ({ caller, path, body, idempotency }) => {
    const answer = await resolveCase(
      { ...ledgerDeps(), payments: stripePayments() },
      caller,
      path.caseId,
      body,
      idempotency,
    );
    return { status: answer.status, body: answer.body };
  },
});
