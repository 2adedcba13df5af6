import { declaredHttpRoute } from '../../infra/routes';
import { decideInviteRoute } from './guardian-invite-decide';

/** POST /v1/guardian-invites/{inviteId}/decline: the invited guardian says no. */
export const handler = decideInviteRoute(declaredHttpRoute('GuardianInviteDecline'), 'decline');
