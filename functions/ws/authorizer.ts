import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import * as z from 'zod';
import { verifyBearerToken } from '../../shared/auth/jwt';
import { callerFromClaims } from '../../shared/http/caller';
import { UnauthorizedError } from '../../shared/domain/errors';
import { logger } from '../../shared/logger';
import { opaqueId } from '../../shared/http/schemas';
import { instrumented } from '../../shared/observability/invocation';

const query = z.object({ token: z.string().min(1).max(8192), streamId: opaqueId.optional() });

/**
 * The WebSocket $connect REQUEST authorizer: the browser cannot set headers on a WebSocket, so
 * the token comes in the query string. API Gateway answers 401 at the upgrade when this throws
 * 'Unauthorized'. The verified claims travel to every route as the authorizer context.
 */
export const handler = instrumented(
  async function handler(event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
    const parsed = query.safeParse(event.queryStringParameters ?? {});
    if (!parsed.success) throw new Error('Unauthorized');
    try {
      const caller = callerFromClaims(await verifyBearerToken(parsed.data.token));
      return {
        principalId: caller.userId,
        policyDocument: {
          Version: '2012-10-17',
          Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: event.methodArn }],
        },
        context: {
          userId: caller.userId,
          ...(caller.birthdate && { birthdate: caller.birthdate }),
          ...(caller.country && { country: caller.country }),
          parentalConsent: caller.parentalConsent,
          ...(parsed.data.streamId && { streamId: parsed.data.streamId }),
        },
      };
    } catch (error) {
      if (error instanceof UnauthorizedError) {
        logger.info('websocket connection refused', { reason: error.message });
        throw new Error('Unauthorized');
      }
      throw error;
    }
  },
  (event) => ({ correlationId: event.requestContext?.requestId }),
);
