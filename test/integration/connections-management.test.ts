import {
  ApiGatewayManagementApiClient,
  GetConnectionCommand,
  type GetConnectionCommandOutput,
  GoneException,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { WebSocket } from 'ws';
import type { LocalStack } from '../../infra/local/stack';
import { apiClient, startTestStack, type ApiClient } from '../support/local-stack';

/*
 * The local @connections API's GET, through the AWS SDK's own GetConnectionCommand: the fields
 * it reads (connectedAt, identity.sourceIp, identity.userAgent, lastActiveAt), a lastActiveAt
 * that moves only when the client sends a frame, and a 410 GoneException once the client is gone.
 */

const USER_AGENT = 'connections-management-test/1.0';

let stack: LocalStack;
let api: ApiClient;
let management: ApiGatewayManagementApiClient;

beforeAll(async () => {
  stack = await startTestStack();
  api = apiClient(stack.httpUrl);
  management = new ApiGatewayManagementApiClient({
    endpoint: stack.gateway.managementEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
});
afterAll(async () => {
  management?.destroy();
  await stack?.stop();
});

interface Client {
  socket: WebSocket;
  connectionId: string;
  /** Frames received so far, parsed. */
  frames: Array<{ type?: string }>;
}

/** Opens a socket with a User-Agent and returns it with the connection id the gateway gave it. */
async function connect(sub: string): Promise<Client> {
  const token = await api.token({ sub, birthdate: '1990-01-01', country: 'US' });
  const before = new Set(stack.gateway.openConnectionIds());
  const socket = new WebSocket(`${stack.wsUrl}/?token=${token}`, { headers: { 'user-agent': USER_AGENT } });
  const frames: Client['frames'] = [];
  socket.on('message', (data) => frames.push(JSON.parse(String(data)) as { type?: string }));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  const fresh = await until(() => {
    const ids = stack.gateway.openConnectionIds().filter((id) => !before.has(id));
    return ids.length === 1 ? ids[0] : undefined;
  }, 'the new connection to be registered');
  return { socket, connectionId: fresh, frames };
}

/** Polls `probe` until it gives a value: waits on a condition, never on a fixed delay. */
async function until<T>(probe: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const describeConnection = (connectionId: string): Promise<GetConnectionCommandOutput> =>
  management.send(new GetConnectionCommand({ ConnectionId: connectionId }));

describe('local @connections GET (GetConnectionCommand)', () => {
  it('answers connectedAt, identity.sourceIp, identity.userAgent and lastActiveAt as the SDK reads them', async () => {
    const openedFrom = Date.now();
    const client = await connect('conn-describe');
    const openedBy = Date.now();
    try {
      const described = await describeConnection(client.connectionId);
      expect(described.ConnectedAt).toBeInstanceOf(Date);
      expect(described.ConnectedAt?.getTime()).toBeGreaterThanOrEqual(openedFrom);
      expect(described.ConnectedAt?.getTime()).toBeLessThanOrEqual(openedBy);
      expect(described.Identity).toEqual({ SourceIp: '127.0.0.1', UserAgent: USER_AGENT });
      // No frame sent yet: last active when it connected.
      expect(described.LastActiveAt).toEqual(described.ConnectedAt);
    } finally {
      client.socket.terminate();
    }
  });

  it('moves lastActiveAt when the client sends a frame, and not when it is only read', async () => {
    const client = await connect('conn-active');
    try {
      const first = await describeConnection(client.connectionId);
      const firstActive = first.LastActiveAt?.getTime() ?? Number.NaN;
      // Let the clock pass the first reading, so that a moved lastActiveAt can be told apart.
      await until(() => (Date.now() > firstActive ? true : undefined), 'the clock to move');
      const reread = await describeConnection(client.connectionId);
      expect(reread.LastActiveAt?.getTime()).toBe(firstActive);

      const sentFrom = Date.now();
      client.socket.send(JSON.stringify({ action: 'ping' }));
      await until(() => (client.frames.some((frame) => frame.type === 'pong') ? true : undefined), 'the pong');
      const afterFrame = await describeConnection(client.connectionId);
      expect(afterFrame.LastActiveAt?.getTime()).toBeGreaterThanOrEqual(sentFrom);
      expect(afterFrame.LastActiveAt?.getTime()).toBeGreaterThan(firstActive);
      expect(afterFrame.ConnectedAt).toEqual(first.ConnectedAt);
    } finally {
      client.socket.terminate();
    }
  });

  it('answers 410 GoneException for a connection that has closed, and for one that never was', async () => {
    const client = await connect('conn-gone');
    await describeConnection(client.connectionId);
    client.socket.close();
    await until(
      () => (stack.gateway.openConnectionIds().includes(client.connectionId) ? undefined : true),
      'the gateway to forget the closed connection',
    );
    for (const connectionId of [client.connectionId, 'bm9uZXhpc3RlbnQ=']) {
      const error = await describeConnection(connectionId).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(GoneException);
      expect((error as GoneException).$metadata.httpStatusCode).toBe(410);
    }
  });
});
