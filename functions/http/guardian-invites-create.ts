import * as z from 'zod';
import { ledgerDeps } from '../../shared/adapters/clients';
import { inviteAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { userIdSchema } from '../../shared/http/schemas';
import { inviteGuardian } from '../../shared/usecases/guardians';
import { declaredHttpRoute } from '../../infra/routes';

/** POST /v1/guardian-invites { guardianId } -> 201 the invite (a waiting one is answered as it is). */
export const handler = httpRoute(declaredHttpRoute('GuardianInvitesCreate'), {
  body: z.object({ guardianId: userIdSchema }),
  response: { status: 201, schema: inviteAnswer },
  handle: async ({ caller, body: input }) => ({
    status: 201,
    body: await inviteGuardian(ledgerDeps(), caller, input.guardianId),
  }),
});
