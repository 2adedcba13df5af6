import type { APIGatewayProxyResultV2 } from 'aws-lambda';
import { connectionsStore } from '../../shared/adapters/clients';
import { userConnections } from '../../shared/adapters/dynamo/connection-streams';
import { announceRoomCounters } from '../../shared/adapters/gift-events';
import { systemClock } from '../../shared/adapters/clock';
import { authorizerContext, type WsEvent } from '../../shared/ws/route';
import { instrumented } from '../../shared/observability/invocation';

/** $disconnect: forget the connection (a missed one is removed at its first GoneException, or by TTL) and free its slot. */
export const handler = instrumented(
  async function handler(event: WsEvent): Promise<APIGatewayProxyResultV2> {
    const streamId = await connectionsStore().remove(event.requestContext.connectionId);
    if (streamId !== undefined) await announceRoomCounters(streamId, systemClock.now());
    const context = authorizerContext.safeParse(event.requestContext.authorizer ?? {});
    if (context.success) await userConnections().release(context.data.userId, event.requestContext.connectionId);
    return { statusCode: 200 };
  },
  (event) => ({ correlationId: event.requestContext.requestId, connectionId: event.requestContext.connectionId }),
);
