import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { creatorProfileAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { MAX_DISPLAY_NAME_LENGTH, setDisplayName } from '../../shared/usecases/creator-profiles';
import { declaredHttpRoute } from '../../infra/routes';

/** PUT /v1/creator/profile { displayName } -> 200 the profile (after going live once). */
export const handler = httpRoute(declaredHttpRoute('CreatorProfileSet'), {
  body: z.object({ displayName: z.string().trim().min(1).max(MAX_DISPLAY_NAME_LENGTH) }),
  response: { status: 200, schema: creatorProfileAnswer },
  handle: async ({ caller, body: input }) => ({
    status: 200,
    body: await setDisplayName({ store: ledgerStore() }, caller, input.displayName),
  }),
});
