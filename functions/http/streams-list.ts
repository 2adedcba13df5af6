import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { streamsPageAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { DEFAULT_STREAM_PAGE_SIZE, listLiveStreams, MAX_STREAM_PAGE_SIZE } from '../../shared/usecases/streams';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/streams?limit&cursor: live streams, newest first (the demo page picks one here). */
export const handler = httpRoute(declaredHttpRoute('StreamsList'), {
  query: z.object({
    limit: z.coerce.number().int().min(1).max(MAX_STREAM_PAGE_SIZE).default(DEFAULT_STREAM_PAGE_SIZE),
    cursor: z.string().min(1).max(1024).optional(),
  }),
  response: { status: 200, schema: streamsPageAnswer },
  handle: async ({ query }) => ({
    status: 200,
    body: await listLiveStreams(
      { store: ledgerStore() },
      { limit: query.limit, ...(query.cursor !== undefined && { cursor: query.cursor }) },
    ),
  }),
});
