import { GIFTS } from '../../shared/domain/catalog';
import { httpRoute } from '../../shared/http/route';

/** GET /v1/gifts: the gift catalog. */
export const handler = httpRoute({
  auth: false,
  handle: async () => ({ status: 200, body: { gifts: GIFTS } }),
});
