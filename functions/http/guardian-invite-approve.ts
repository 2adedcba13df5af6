import { declaredHttpRoute } from '../../infra/routes';
import { decideInviteRoute } from './guardian-invite-decide';

/** POST /v1/guardian-invites/{inviteId}/approve: the invited guardian, of age, gives consent. */
export const handler = decideInviteRoute(declaredHttpRoute('GuardianInviteApprove'), 'approve');
