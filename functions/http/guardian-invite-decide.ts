import * as z from 'zod';
import { ledgerDeps } from '../../shared/adapters/clients';
import { inviteAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { opaqueId } from '../../shared/http/schemas';
import { decideInvite } from '../../shared/usecases/guardians';
import type { DeclaredHttpRoute } from '../../infra/routes';

/** POST /v1/guardian-invites/{inviteId}/approve | decline -> 200 the invite (one handler per route). */
export function decideInviteRoute(
  declared: DeclaredHttpRoute<'GuardianInviteApprove'> | DeclaredHttpRoute<'GuardianInviteDecline'>,
  decision: 'approve' | 'decline',
) {
  return httpRoute(declared, {
    path: z.object({ inviteId: opaqueId }),
    response: { status: 200, schema: inviteAnswer },
    handle: async ({ caller, path }) => ({
      status: 200,
      body: await decideInvite(ledgerDeps(), caller, path.inviteId, decision),
    }),
  });
}
