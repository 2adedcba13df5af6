import { ledgerStore } from '../../shared/adapters/clients';
import { verifyBearerToken } from '../../shared/auth/jwt';
import { authorizeEventApi, type EventApiAuthorizerResult } from '../../shared/events/authorize';
import { logger } from '../../shared/logger';
import { instrumented } from '../../shared/observability/invocation';
import { readStream } from '../../shared/usecases/streams';

/**
 * The AppSync Event API's Lambda authorizer (connect and subscribe). It only reads: the stream
 * item, to allow the channel of a live room. A refusal is an answer, not an error, so AppSync
 * sends the client `connection_error` / `subscribe_error` rather than a 500.
 */
export const handler = instrumented(async function handler(event: unknown): Promise<EventApiAuthorizerResult> {
  const { result, reason } = await authorizeEventApi(
    { verifyToken: verifyBearerToken, readStream: (streamId) => readStream(ledgerStore(), streamId) },
    event,
  );
  if (!result.isAuthorized) logger.info('event api request refused', { reason });
  return result;
});
