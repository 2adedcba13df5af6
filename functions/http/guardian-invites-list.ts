import { ledgerDeps } from '../../shared/adapters/clients';
import { invitesAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { listPendingInvites } from '../../shared/usecases/guardians';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/guardian-invites -> 200 { items }: the invites waiting for the caller, as a guardian. */
export const handler = httpRoute(declaredHttpRoute('GuardianInvitesList'), {
  response: { status: 200, schema: invitesAnswer },
  handle: async ({ caller }) => ({
    status: 200,
    body: await listPendingInvites(ledgerDeps(), caller),
  }),
});
