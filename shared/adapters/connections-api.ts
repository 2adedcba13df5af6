import { awsConfig, webSocketConfig } from '../config';
import { logger } from '../logger';
import { retryWithBackoff, type RetryPolicy } from '../domain/retry';
import type { DynamoConnectionsStore } from './dynamo/connections-store';
import type { ConnectionsStore } from '../ports/connections-store';
import { metrics } from '../observability/metrics';
import { type ConnectionsApi, SignedConnectionsApi } from './connections-http';

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
  /** `encoded` is `message` already serialized (a frame to many viewers is serialized once). */
  post(connectionId: string, message: unknown, encoded?: Uint8Array): Promise<PostOutcome>;
}

/** One signed client per @connections endpoint; read per call, so a function not granted posting fails locally too. */
let client: { endpoint: string; api: SignedConnectionsApi } | undefined;
function managementApi(): ConnectionsApi {
  const endpoint = webSocketConfig().WS_MANAGEMENT_ENDPOINT;
  if (client?.endpoint !== endpoint)
    client = { endpoint, api: new SignedConnectionsApi(endpoint, awsConfig().AWS_REGION) };
  return client.api;
}

const isThrottle = (error: unknown) =>
  error instanceof Error &&
  (error.name === 'LimitExceededException' ||
    error.name === 'ThrottlingException' ||
    error.name === 'TooManyRequestsException');

export class ApiGatewayConnectionPoster implements ConnectionPoster {
  constructor(
    private readonly connections: DynamoConnectionsStore,
    private readonly api: ConnectionsApi = managementApi(),
  ) {}

  async post(connectionId: string, message: unknown, encoded?: Uint8Array): Promise<PostOutcome> {
    const data = encoded ?? Buffer.from(JSON.stringify(message));
    try {
      await retryWithBackoff(() => this.api.postToConnection(connectionId, data), POST_RETRY, isThrottle);
      return 'sent';
    } catch (error) {
      if (error instanceof Error && error.name === 'GoneException') {
        metrics.count('ConnectionPostsGone');
        await this.connections.removeGone(connectionId, new Date());
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
  // Serialized once: a 32 KB frame stringified per viewer cost more CPU than posting it.
  const encoded = Buffer.from(JSON.stringify(message));
  let next = 0;
  const worker = async () => {
    while (next < connectionIds.length) {
      const id = connectionIds[next++];
      if (id === undefined) break;
      counts[await poster.post(id, message, encoded)] += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, connectionIds.length) }, worker));
  return counts;
}

/** docs/API.md: `{ type: 'wallet', coins, diamonds, pendingDiamonds }` to every connection of a user whose balance changed. */
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
