import * as z from 'zod';
import { connectionPoster, connectionsStore, ledgerStore } from '../../shared/adapters/clients';
import { postToAll } from '../../shared/adapters/connections-api';
import { systemClock } from '../../shared/adapters/clock';
import { giftEventPublisher } from '../../shared/adapters/gift-events';
import { streamAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { opaqueId } from '../../shared/http/schemas';
import { endStream } from '../../shared/usecases/streams';
import { declaredHttpRoute } from '../../infra/routes';

/** POST /v1/streams/{streamId}/end: its creator only; viewers get streamEnded after the gifts before it. */
export const handler = httpRoute(declaredHttpRoute('StreamsEnd'), {
  path: z.object({ streamId: opaqueId }),
  response: { status: 200, schema: streamAnswer },
  handle: async ({ caller, path }) => ({
    status: 200,
    body: await endStream(
      {
        store: ledgerStore(),
        connections: connectionsStore(),
        publisher: giftEventPublisher(),
        postStreamEnded: async (streamId) => {
          const ids: string[] = [];
          for await (const page of connectionsStore().streamConnectionIds(streamId)) ids.push(...page);
          await postToAll(connectionPoster(), ids, { type: 'streamEnded', streamId });
        },
        now: () => systemClock.now(),
      },
      caller,
      path.streamId,
    ),
  }),
});
