import { ledgerStore } from '../../shared/adapters/clients';
import { systemClock } from '../../shared/adapters/clock';
import { httpRoute } from '../../shared/http/route';
import { readConsent } from '../../shared/usecases/guardians';

/** GET /v1/consent -> 200 { consented, appConsent, guardianId, decidedAt }. */
export const handler = httpRoute({
  auth: true,
  handle: async ({ caller }) => ({
    status: 200,
    body: await readConsent({ store: ledgerStore(), now: () => systemClock.now() }, caller),
  }),
});
