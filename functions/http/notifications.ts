import { ledgerStore } from '../../shared/adapters/clients';
import { notificationsAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { pageQuery } from '../../shared/http/schemas';
import { listNotifications } from '../../shared/usecases/streams';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/notifications?limit&cursor: the caller's gifts received, newest first. */
export const handler = httpRoute(declaredHttpRoute('Notifications'), {
  // One query per creator shard: weighs more against the caller's read limit.
  query: pageQuery,
  response: { status: 200, schema: notificationsAnswer },
  handle: async ({ caller, query }) => ({
    status: 200,
    body: await listNotifications({ store: ledgerStore() }, caller, {
      limit: query.limit,
      ...(query.cursor !== undefined && { cursor: query.cursor }),
    }),
  }),
});
