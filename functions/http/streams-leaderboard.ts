import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { leaderboardAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { opaqueId } from '../../shared/http/schemas';
import { DEFAULT_LEADERBOARD_SIZE, MAX_LEADERBOARD_SIZE, streamLeaderboard } from '../../shared/usecases/streams';
import { declaredHttpRoute } from '../../infra/routes';

/** GET /v1/streams/{streamId}/leaderboard?limit: top gifters first (may lag the gifts by a batch). */
export const handler = httpRoute(declaredHttpRoute('StreamsLeaderboard'), {
  // One query per creator shard: weighs more against the caller's read limit.
  path: z.object({ streamId: opaqueId }),
  query: z.object({
    limit: z.coerce.number().int().min(1).max(MAX_LEADERBOARD_SIZE).default(DEFAULT_LEADERBOARD_SIZE),
  }),
  response: { status: 200, schema: leaderboardAnswer },
  handle: async ({ path, query }) => ({
    status: 200,
    body: await streamLeaderboard({ store: ledgerStore() }, path.streamId, query.limit),
  }),
});
