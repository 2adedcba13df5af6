import { packagesForCountry } from '../../shared/domain/catalog';
import { httpRoute } from '../../shared/http/route';
import { countryQuery } from '../../shared/http/schemas';

/** GET /v1/packages?country=US: the country's price list, or 403 REGION_UNAVAILABLE. */
export const handler = httpRoute({
  auth: false,
  query: countryQuery,
  handle: async ({ query }) => {
    const country = query.country.toUpperCase();
    const { currency, packages } = packagesForCountry(country);
    return { status: 200, body: { country, currency, packages } };
  },
});
