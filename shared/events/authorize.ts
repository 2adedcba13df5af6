import * as z from 'zod';
import type { JWTPayload } from 'jose';
import { UnauthorizedError } from '../domain/errors';
import type { StreamRecord } from '../usecases/streams';
import { streamIdFromChannel } from './channels';

/**
 * The Event API's Lambda authorizer, the same code on AWS and in the local stand-in. AppSync
 * calls it with the client's `Authorization` header for the connection (EVENT_CONNECT) and for
 * each subscription (EVENT_SUBSCRIBE, with the channel). The token is verified exactly as the
 * HTTP API's JWT authorizer does (issuer, audience, expiry, the issuer's keys); a subscription
 * is allowed only to the channel of a stream that exists and is live. Publishing is never
 * allowed here: only the broadcaster publishes, with IAM (locally, with the stand-in's key).
 */

export const eventApiAuthorizerEvent = z.object({
  authorizationToken: z.string().max(8192).optional(),
  requestContext: z.object({
    operation: z.enum(['EVENT_CONNECT', 'EVENT_SUBSCRIBE', 'EVENT_PUBLISH']),
    channel: z.string().max(1024).optional(),
    channelNamespaceName: z.string().max(128).optional(),
    requestId: z.string().optional(),
  }),
});
export type EventApiAuthorizerEvent = z.infer<typeof eventApiAuthorizerEvent>;

export interface EventApiAuthorizerResult {
  isAuthorized: boolean;
  /**
   * 0: AppSync caches an answer per token for this long, and one token subscribes to several
   * channels; a cached "yes" for one room must never answer for another, nor outlive the stream.
   */
  ttlOverride: number;
  handlerContext?: Record<string, string>;
}

export interface AuthorizeDeps {
  verifyToken: (token: string) => Promise<JWTPayload>;
  readStream: (streamId: string) => Promise<StreamRecord | undefined>;
}

const refuse: EventApiAuthorizerResult = { isAuthorized: false, ttlOverride: 0 };

/** The token may come as `Bearer <jwt>` (what the HTTP API takes) or bare (what Amplify sends). */
function bareToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const token = header.replace(/^Bearer\s+/i, '').trim();
  return token.length > 0 ? token : undefined;
}

export async function authorizeEventApi(
  deps: AuthorizeDeps,
  input: unknown,
): Promise<{ result: EventApiAuthorizerResult; reason?: string }> {
  const parsed = eventApiAuthorizerEvent.safeParse(input);
  if (!parsed.success) return { result: refuse, reason: 'malformed authorizer event' };
  const { requestContext } = parsed.data;
  if (requestContext.operation === 'EVENT_PUBLISH') return { result: refuse, reason: 'clients never publish' };
  const token = bareToken(parsed.data.authorizationToken);
  if (token === undefined) return { result: refuse, reason: 'no token' };
  let claims: JWTPayload;
  try {
    claims = await deps.verifyToken(token);
  } catch (error) {
    if (error instanceof UnauthorizedError) return { result: refuse, reason: error.message };
    throw error;
  }
  const userId = typeof claims.sub === 'string' ? claims.sub : '';
  if (requestContext.operation === 'EVENT_CONNECT')
    return { result: { isAuthorized: true, ttlOverride: 0, handlerContext: { userId } } };
  const streamId = requestContext.channel === undefined ? undefined : streamIdFromChannel(requestContext.channel);
  if (streamId === undefined) return { result: refuse, reason: 'not a room channel' };
  const stream = await deps.readStream(streamId);
  if (!stream) return { result: refuse, reason: 'unknown stream' };
  if (stream.status !== 'live') return { result: refuse, reason: 'stream not live' };
  return { result: { isAuthorized: true, ttlOverride: 0, handlerContext: { userId, streamId } } };
}
