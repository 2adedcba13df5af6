import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { creatorProfileAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { userIdSchema } from '../../shared/http/schemas';
import { getCreatorProfile } from '../../shared/usecases/creator-profiles';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/creators/{creatorId} -> 200 the creator's public profile; 404 for someone who never went live. */
export const handler = httpRoute(declaredHttpRoute('CreatorsGet'), {
  path: z.object({ creatorId: userIdSchema }),
  response: { status: 200, schema: creatorProfileAnswer },
  handle: async ({ path }) => ({
    status: 200,
    body: await getCreatorProfile({ store: ledgerStore() }, path.creatorId),
  }),
});
