import * as z from 'zod';
import { connectionsStore, ledgerStore } from '../../shared/adapters/clients';
import { streamAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { opaqueId } from '../../shared/http/schemas';
import { getStream } from '../../shared/usecases/streams';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/streams/{streamId}: the stream with its gift coins and current viewers. */
export const handler = httpRoute(declaredHttpRoute('StreamsGet'), {
  path: z.object({ streamId: opaqueId }),
  response: { status: 200, schema: streamAnswer },
  handle: async ({ path }) => ({
    status: 200,
    body: await getStream({ store: ledgerStore(), connections: connectionsStore() }, path.streamId),
  }),
});
