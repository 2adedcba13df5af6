import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { systemClock } from '../../shared/adapters/clock';
import { connectionCaps, connectionStreams, userConnections } from '../../shared/adapters/dynamo/connection-streams';
import { NotFoundError } from '../../shared/domain/errors';
import { opaqueId } from '../../shared/http/schemas';
import { readStream } from '../../shared/usecases/streams';
import { wsRoute } from '../../shared/ws/route';

/**
 * `join { streamId }`: move this connection to another stream; the fan-out index follows at once.
 * Answers `{ type: 'joined', streamId }` so a client knows from when on it receives that stream.
 */
export const handler = wsRoute({
  // Costs database reads and writes: a write against the caller's limit.
  requestClass: 'write',
  body: z.object({ action: z.literal('join'), streamId: opaqueId }),
  handle: async ({ body, caller, connectionId }) => {
    if (!(await readStream(ledgerStore(), body.streamId))) throw new NotFoundError('No such stream.');
    if (!(await connectionStreams().moveToStream(connectionId, body.streamId)))
      throw new NotFoundError('This connection is not known any more; reconnect.');
    // As at $connect: the user's older connection on that stream leaves it (one viewer per user by default).
    const leftStream = await userConnections().moveTo(
      caller.userId,
      connectionId,
      body.streamId,
      connectionCaps(),
      systemClock.now(),
    );
    await Promise.all(leftStream.map((older) => connectionStreams().leaveStream(older, body.streamId)));
    return { type: 'joined', streamId: body.streamId };
  },
});
