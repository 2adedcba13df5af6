import {
  ApiGatewayManagementApiClient,
  GoneException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { awsConfig, webSocketConfig } from '../config';
import { logger } from '../logger';
import { retryWithBackoff, type RetryPolicy } from '../domain/retry';
import type { ConnectionsStore } from './dynamo/connections-store';
import { metrics } from '../observability/metrics';
import { instrumentAwsClient } from '../observability/tracing';

/**
 * Posts messages to WebSocket connections through API Gateway's @connections API. Every post
 * counts against the account's 10,000 requests a second, so fan-out is bounded in concurrency
 * and callers coalesce what they can into one frame. A GoneException means that one connection
 * is gone: it alone is forgotten.
 */
export const FANOUT_CONCURRENCY = 100;
/** Throttled posts (429) are retried a few times with jitter; a frame is not worth more. */
export const POST_RETRY: RetryPolicy = { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 400 };

export type PostOutcome = 'sent' | 'gone' | 'throttled' | 'failed';

export interface ConnectionPoster {
  post(connectionId: string, message: unknown): Promise<PostOutcome>;
}

let client: ApiGatewayManagementApiClient | undefined;
function managementClient(): ApiGatewayManagementApiClient {
  client ??= instrumentAwsClient(
    new ApiGatewayManagementApiClient({
      region: awsConfig().AWS_REGION,
      endpoint: webSocketConfig().WS_MANAGEMENT_ENDPOINT,
      maxAttempts: 1,
    }),
  );
  return client;
}

const isThrottle = (error: unknown) =>
  error instanceof Error &&
  (error.name === 'LimitExceededException' ||
    error.name === 'ThrottlingException' ||
    error.name === 'TooManyRequestsException');

export class ApiGatewayConnectionPoster implements ConnectionPoster {
  constructor(
    private readonly connections: ConnectionsStore,
    private readonly api: Pick<ApiGatewayManagementApiClient, 'send'> = managementClient(),
  ) {}

  async post(connectionId: string, message: unknown): Promise<PostOutcome> {
    const data = Buffer.from(JSON.stringify(message));
    try {
      await retryWithBackoff(
        () => this.api.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data })),
        POST_RETRY,
        isThrottle,
      );
      return 'sent';
    } catch (error) {
      if (error instanceof GoneException) {
        metrics.count('ConnectionPostsGone');
        await this.connections.remove(connectionId);
        return 'gone';
      }
      // Still throttled after the backoff: this viewer misses one frame. The next frame's seq
      // jump tells its client to catch up with GET .../events, so no seq is lost.
      if (isThrottle(error)) {
        metrics.count('ConnectionPostsThrottled');
        return 'throttled';
      }
      logger.warn('post to connection failed', {
        connectionId,
        error: error instanceof Error ? error.name : String(error),
      });
      return 'failed';
    }
  }
}

/** Sends one message to many connections with at most `concurrency` posts in flight. */
export async function postToAll(
  poster: ConnectionPoster,
  connectionIds: string[],
  message: unknown,
  concurrency = FANOUT_CONCURRENCY,
): Promise<Record<PostOutcome, number>> {
  const counts: Record<PostOutcome, number> = { sent: 0, gone: 0, throttled: 0, failed: 0 };
  let next = 0;
  const worker = async () => {
    while (next < connectionIds.length) {
      const id = connectionIds[next++];
      if (id === undefined) break;
      counts[await poster.post(id, message)] += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, connectionIds.length) }, worker));
  return counts;
}

/** API.md: `{ type: 'wallet', coins, diamonds, pendingDiamonds }` to every connection of a user whose balance changed. */
export async function pushWallet(
  deps: { connections: ConnectionsStore; poster: ConnectionPoster },
  wallet: { userId: string; coins: number; diamonds: number; pendingDiamonds: number },
): Promise<void> {
  const ids = await deps.connections.userConnectionIds(wallet.userId);
  if (ids.length === 0) return;
  await postToAll(deps.poster, ids, {
    type: 'wallet',
    coins: wallet.coins,
    diamonds: wallet.diamonds,
    pendingDiamonds: wallet.pendingDiamonds,
  });
}
