import { ledgerDeps } from '../../shared/adapters/clients';
import { consentAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { readConsent } from '../../shared/usecases/guardians';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/consent -> 200 { consented, appConsent, guardianId, decidedAt }. */
export const handler = httpRoute(declaredHttpRoute('ConsentGet'), {
  response: { status: 200, schema: consentAnswer },
  handle: async ({ caller }) => ({
    status: 200,
    body: await readConsent(ledgerDeps(), caller),
  }),
});
