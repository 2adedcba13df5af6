import { GIFTS } from '../../shared/domain/catalog';
import { giftCatalogAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/gifts: the gift catalog. */
export const handler = httpRoute(declaredHttpRoute('CatalogGifts'), {
  response: { status: 200, schema: giftCatalogAnswer },
  handle: async () => ({ status: 200, body: { gifts: GIFTS } }),
});
