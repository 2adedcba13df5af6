import * as z from 'zod';
import { ledgerDeps } from '../../shared/adapters/clients';
import { creatorProfileAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { userIdSchema } from '../../shared/http/schemas';
import { setVerified } from '../../shared/usecases/creator-profiles';
import { declaredHttpRoute } from '../../infra/routes';

/** PUT /v1/operator/creators/{creatorId}/verified { verified } (operators): the badge, audited. */
export const handler = httpRoute(declaredHttpRoute('OperatorCreatorVerified'), {
  path: z.object({ creatorId: userIdSchema }),
  body: z.object({ verified: z.boolean() }),
  response: { status: 200, schema: creatorProfileAnswer },
  handle: async ({ caller, path, body: input }) => ({
    status: 200,
    body: await setVerified(ledgerDeps(), caller, path.creatorId, input.verified),
  }),
});
