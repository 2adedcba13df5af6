import { healthAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /health: the process answers; the local stack only routes here once every part is up. */
export const handler = httpRoute(declaredHttpRoute('Health'), {
  response: { status: 200, schema: healthAnswer },
  handle: async () => ({ status: 200, body: { status: 'ok' } }),
});
