import middy from '@middy/core';
import type { APIGatewayProxyResultV2, APIGatewayProxyWebsocketEventV2, Context } from 'aws-lambda';
import * as z from 'zod';
import { DomainError, type ErrorCode, ValidationError } from '../domain/errors';
import type { Caller } from '../domain/identity';
import { logger } from '../logger';
import { runInvocation } from '../observability/invocation';
import { zodDetails } from '../http/route';
import { type RequestClass, userRateLimiter, whileCounting } from '../http/rate-limit';

/** API Gateway refuses WebSocket frames over 128 KB; we refuse far smaller ones sooner. */
export const MAX_FRAME_BYTES = 32 * 1024;

/** The authorizer's context, as API Gateway passes it to every route of the connection. */
export const authorizerContext = z.object({
  userId: z.string().min(1),
  birthdate: z.string().optional(),
  country: z.string().optional(),
  parentalConsent: z.union([z.boolean(), z.enum(['true', 'false']).transform((value) => value === 'true')]).optional(),
  streamId: z.string().optional(),
});

export type WsEvent = APIGatewayProxyWebsocketEventV2 & {
  requestContext: APIGatewayProxyWebsocketEventV2['requestContext'] & { authorizer?: Record<string, unknown> };
};

export function callerFromAuthorizer(event: WsEvent): Caller {
  const context = authorizerContext.parse(event.requestContext.authorizer ?? {});
  return {
    userId: context.userId,
    ...(context.birthdate && { birthdate: context.birthdate }),
    ...(context.country && { country: context.country }),
    parentalConsent: context.parentalConsent ?? false,
  };
}

/** The reply a route sends back on the same connection (a two-way route response). */
export function reply(message: unknown): APIGatewayProxyResultV2 {
  return { statusCode: 200, body: JSON.stringify(message) };
}

export function errorMessage(error: unknown, requestId: string | undefined, correlationId: string): unknown {
  if (error instanceof DomainError) {
    return {
      type: 'error',
      ...(requestId !== undefined && { requestId }),
      error: {
        code: error.code,
        message: error.message,
        ...(error.details && { details: error.details }),
        // RATE_LIMITED carries its retry hint here, as an HTTP answer carries it in Retry-After.
        ...(error.retryAfterSeconds !== undefined && { retryAfterSeconds: error.retryAfterSeconds }),
      },
    };
  }
  logger.error('unhandled error', { correlationId, error: error instanceof Error ? error : String(error) });
  return {
    type: 'error',
    ...(requestId !== undefined && { requestId }),
    error: { code: 'INTERNAL' satisfies ErrorCode, message: 'Something went wrong on our side.', correlationId },
  };
}

/**
 * A WebSocket route: parses the frame as JSON and with the route's schema, runs the use case,
 * and answers on the connection. Any refusal is an `error` message; the connection stays open.
 */
export function wsRoute<Schema extends z.ZodType>(spec: {
  body: Schema;
  /** The caller's limit this action takes from (shared with HTTP): 'write' for sendGift and join. */
  requestClass: RequestClass;
  handle: (input: {
    body: z.infer<Schema>;
    caller: Caller;
    connectionId: string;
    correlationId: string;
    event: WsEvent;
  }) => Promise<unknown>;
}) {
  const core = async (event: WsEvent, context: Context): Promise<APIGatewayProxyResultV2> => {
    const correlationId = event.requestContext.requestId ?? context.awsRequestId;
    let requestId: string | undefined;
    try {
      const text = event.body ?? '';
      let json: unknown;
      let isJson = true;
      try {
        json = JSON.parse(text);
      } catch {
        isJson = false;
      }
      // The requestId is read before any refusal, so every error can repeat it (docs/API.md). Parsing
      // first costs little: API Gateway never delivers a frame over 128 KB.
      const candidate = z.object({ requestId: z.string().max(255) }).safeParse(json);
      if (candidate.success) requestId = candidate.data.requestId;
      // Every frame counts against its sender's limit, a malformed one too: each costs an invocation.
      const caller = callerFromAuthorizer(event);
      const counting = userRateLimiter().take(caller.userId, spec.requestClass);
      const message = await whileCounting(counting, async () => {
        if (!isJson) throw new ValidationError('The message is not valid JSON.');
        if (Buffer.byteLength(text, 'utf8') > MAX_FRAME_BYTES) throw new ValidationError('The message is too large.');
        const parsed = spec.body.safeParse(json);
        if (!parsed.success)
          throw new ValidationError('The message is not valid.', { details: zodDetails(parsed.error, '') });
        return spec.handle({
          body: parsed.data,
          caller,
          connectionId: event.requestContext.connectionId,
          correlationId,
          event,
        });
      });
      return reply(message);
    } catch (error) {
      return reply(errorMessage(error, requestId, correlationId));
    }
  };
  // One invocation per frame: its log lines carry this correlation id, route and connection only.
  const invocation = (event: WsEvent, context: Context) =>
    runInvocation(
      context,
      {
        correlationId: event.requestContext.requestId ?? context.awsRequestId,
        route: event.requestContext.routeKey,
        connectionId: event.requestContext.connectionId,
      },
      () => core(event, context),
    );
  // The schema rides along on the handler, as httpRoute's does, so tests and documents can
  // generate frames from the very schema that parses them.
  return Object.assign(middy(invocation), { routeSpec: { body: spec.body, requestClass: spec.requestClass } });
}
