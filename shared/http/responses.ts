import type { APIGatewayProxyResultV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { DomainError, ERROR_TABLE, type ErrorCode, type ErrorDetail } from '../domain/errors';
import { logger } from '../logger';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: ErrorDetail[]; correlationId?: string };
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

export function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyStructuredResultV2 {
  return { statusCode: status, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

/**
 * The one place errors become HTTP answers. A DomainError shows its code and message; anything
 * else is logged with the correlation id and answered as a bare INTERNAL that repeats the id,
 * never the message or the stack.
 */
export function errorResponse(error: unknown, correlationId: string): APIGatewayProxyResultV2 {
  if (error instanceof DomainError) {
    const body: ErrorBody = {
      error: { code: error.code, message: error.message, ...(error.details && { details: error.details }) },
    };
    const headers: Record<string, string> =
      error.retryAfterSeconds !== undefined ? { 'retry-after': String(error.retryAfterSeconds) } : {};
    return jsonResponse(error.status, body, headers);
  }
  logger.error('unhandled error', { correlationId, error: error instanceof Error ? error : String(error) });
  return jsonResponse(ERROR_TABLE.INTERNAL.status, {
    error: {
      code: 'INTERNAL',
      message: 'Something went wrong on our side. Quote the correlation id if you contact support.',
      correlationId,
    },
  } satisfies ErrorBody);
}
