import type { APIGatewayProxyResultV2 } from 'aws-lambda';
import { connectionsStore } from '../../shared/adapters/clients';
import { systemClock } from '../../shared/adapters/clock';
import { logger } from '../../shared/logger';
import { authorizerContext, type WsEvent } from '../../shared/ws/route';
import { instrumented } from '../../shared/observability/invocation';

/** $connect: the authorizer already verified the token; remember the connection and its stream. */
export const handler = instrumented(async function handler(event: WsEvent): Promise<APIGatewayProxyResultV2> {
  const context = authorizerContext.parse(event.requestContext.authorizer ?? {});
  const now = systemClock.now();
  await connectionsStore().save(
    {
      connectionId: event.requestContext.connectionId,
      userId: context.userId,
      ...(context.streamId && { streamId: context.streamId }),
      connectedAt: now.toISOString(),
    },
    now,
  );
  logger.info('connected', { connectionId: event.requestContext.connectionId, streamId: context.streamId });
  return { statusCode: 200 };
}, (event) => ({ correlationId: event.requestContext.requestId, connectionId: event.requestContext.connectionId }));
