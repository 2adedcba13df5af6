import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { leaderboardAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { opaqueId } from '../../shared/http/schemas';
import { DEFAULT_LEADERBOARD_SIZE, MAX_LEADERBOARD_SIZE, streamLeaderboard } from '../../shared/usecases/streams';
import { SHARD_FANOUT_READ_COST } from '../../shared/http/rate-limit';

/** GET /v1/streams/{streamId}/leaderboard?limit: top gifters first (may lag the gifts by a batch). */
export const handler = httpRoute({
  auth: true,
  // One query per creator shard: weighs more against the caller's read limit.
  rateLimitCost: SHARD_FANOUT_READ_COST,
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
