import { ledgerDeps } from '../../shared/adapters/clients';
import { pricingConfig } from '../../shared/config';
import { packageCatalogAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { countryQuery } from '../../shared/http/schemas';
import { catalogFor } from '../../shared/usecases/catalog';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/packages?country=US: the country's price list with its offers and methods, or 403 REGION_UNAVAILABLE. */
export const handler = httpRoute(declaredHttpRoute('CatalogPackages'), {
  query: countryQuery,
  response: { status: 200, schema: packageCatalogAnswer },
  handle: async ({ query }) => {
    const country = query.country.toUpperCase();
    const catalog = await catalogFor({ ...ledgerDeps(), pricing: pricingConfig().pricing }, country);
    return { status: 200, body: catalog };
  },
});
