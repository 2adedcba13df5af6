import * as z from 'zod';
import { ledgerDeps } from '../../shared/adapters/clients';
import { consentRevokedAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { userIdSchema } from '../../shared/http/schemas';
import { revokeConsent } from '../../shared/usecases/guardians';
import { declaredHttpRoute } from '../../infra/routes';

/** POST /v1/wards/{teenId}/consent/revoke -> 200 { teenId, appConsent: 'revoked', decidedAt }. */
export const handler = httpRoute(declaredHttpRoute('WardConsentRevoke'), {
  path: z.object({ teenId: userIdSchema }),
  response: { status: 200, schema: consentRevokedAnswer },
  handle: async ({ caller, path }) => ({
    status: 200,
    body: await revokeConsent(ledgerDeps(), caller, path.teenId),
  }),
});
