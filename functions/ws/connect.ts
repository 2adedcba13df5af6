import type { APIGatewayProxyResultV2 } from 'aws-lambda';
import { connectionsStore, ledgerStore } from '../../shared/adapters/clients';
import { systemClock } from '../../shared/adapters/clock';
import { connectionCaps, connectionStreams, userConnections } from '../../shared/adapters/dynamo/connection-streams';
import { announceRoomCounters } from '../../shared/adapters/gift-events';
import { ERROR_TABLE, type ErrorCode } from '../../shared/domain/errors';
import { logger } from '../../shared/logger';
import { readStream } from '../../shared/usecases/streams';
import { authorizerContext, type WsEvent } from '../../shared/ws/route';
import { instrumented } from '../../shared/observability/invocation';

/**
 * $connect: the authorizer already verified the token. A non-2xx answer here refuses the upgrade
 * with that status (API Gateway: "if the $connect request fails, the connection will not be made";
 * the local gateway answers the status itself): 404 for a stream that does not exist, 409 for one
 * that has ended, 429 past the user's connection cap. Then the connection and its stream are
 * remembered; the user's older connection on the same stream may leave it (UserConnections).
 */
export const handler = instrumented(
  async function handler(event: WsEvent): Promise<APIGatewayProxyResultV2> {
    const context = authorizerContext.parse(event.requestContext.authorizer ?? {});
    const connectionId = event.requestContext.connectionId;
    const now = systemClock.now();
    if (context.streamId !== undefined) {
      const stream = await readStream(ledgerStore(), context.streamId);
      if (!stream) return refuse('NOT_FOUND', 'No such stream.', { streamId: context.streamId });
      if (stream.status !== 'live')
        return refuse('STREAM_NOT_LIVE', 'The stream has ended.', { streamId: context.streamId });
    }
    const admission = await userConnections().admit(
      context.userId,
      connectionId,
      context.streamId,
      connectionCaps(),
      now,
    );
    if (!admission.admitted)
      return refuse('RATE_LIMITED', 'Too many open connections; close one first.', { userId: context.userId });
    await connectionsStore().save(
      {
        connectionId,
        userId: context.userId,
        ...(context.streamId && { streamId: context.streamId }),
        connectedAt: now.toISOString(),
      },
      now,
    );
    if (context.streamId !== undefined) {
      const streamId = context.streamId;
      await Promise.all(admission.leftStream.map((older) => connectionStreams().leaveStream(older, streamId)));
      await announceRoomCounters(streamId, now);
    }
    logger.info('connected', { connectionId, streamId: context.streamId, tookOver: admission.leftStream.length });
    return { statusCode: 200 };
  },
  (event) => ({ correlationId: event.requestContext.requestId, connectionId: event.requestContext.connectionId }),
);

/** Refuses the upgrade with the status the error table gives the code, so HTTP and WebSocket agree. */
function refuse(code: ErrorCode, message: string, fields: Record<string, string>): APIGatewayProxyResultV2 {
  logger.info('websocket connection refused', { code, ...fields });
  return {
    statusCode: ERROR_TABLE[code].status,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ error: { code, message } }),
  };
}
