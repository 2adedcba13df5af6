import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { giftEventsAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { opaqueId } from '../../shared/http/schemas';
import { MAX_EVENTS_PAGE_SIZE, streamEvents } from '../../shared/usecases/streams';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/streams/{streamId}/events?after&limit: catch-up after a reconnect, in seq order. */
export const handler = httpRoute(declaredHttpRoute('StreamsEvents'), {
  path: z.object({ streamId: opaqueId }),
  query: z.object({
    after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
    limit: z.coerce.number().int().min(1).max(MAX_EVENTS_PAGE_SIZE).default(MAX_EVENTS_PAGE_SIZE),
  }),
  response: { status: 200, schema: giftEventsAnswer },
  handle: async ({ path, query }) => ({
    status: 200,
    body: await streamEvents({ store: ledgerStore() }, path.streamId, { after: query.after, limit: query.limit }),
  }),
});
