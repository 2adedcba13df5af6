import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { ConnectionRegistry, type ConnectionsFault, connectionsApi } from './connections';
import { httpApi, type StaticRoute } from './http-api';
import { listen } from './http-wire';
import { webSocketApi } from './websocket-api';

/**
 * The local API Gateway: the HTTP API (payload format 2.0 events, the JWT authorizer's checks),
 * the WebSocket API ($connect with the REQUEST authorizer, routes by `$request.body.action`,
 * $disconnect), and the @connections management API the SDK calls, GoneException included.
 * Each lives in its own module beside this one, which starts and stops their two servers.
 */

export { type ConnectionsFault, MAX_WEBSOCKET_MESSAGE_BYTES } from './connections';
export { MAX_GATEWAY_PAYLOAD_BYTES, type StaticRoute } from './http-api';

export interface GatewayOptions {
  httpPort: number;
  wsPort: number;
  /** Extra local pages (the demo page, the JWKS, the docs). */
  staticRoutes?: StaticRoute[];
  /** Answers 503 on every route except /health's own 503 until the stack says it is ready. */
  isReady?: () => boolean;
  /** Tests: check every success answer against its published schema. */
  checkAnswers?: boolean;
}

export interface LocalGateway {
  httpUrl: string;
  wsUrl: string;
  /** Where @aws-sdk/client-apigatewaymanagementapi points (WS_MANAGEMENT_ENDPOINT). */
  managementEndpoint: string;
  /** Counts postToConnection calls per connection id (the benchmark reads it). */
  postCounts: Map<string, number>;
  /** Drops a socket without running $disconnect, as a vanished client would. */
  dropConnectionSilently(connectionId: string): void;
  injectConnectionsFault(fault: ConnectionsFault): void;
  openConnectionIds(): string[];
  stop(): Promise<void>;
}

/** Keeps every accepted TCP socket, so that stop() can end kept-alive ones instead of waiting on them. */
function trackSockets(servers: Server[]): Set<Socket> {
  const openSockets = new Set<Socket>();
  for (const server of servers)
    server.on('connection', (socket: Socket) => {
      openSockets.add(socket);
      socket.once('close', () => openSockets.delete(socket));
    });
  return openSockets;
}

export async function startGateway(options: GatewayOptions): Promise<LocalGateway> {
  const httpServer = createServer(httpApi(options));
  // The WebSocket API and its @connections management API share a port, as they share a host on AWS.
  const registry = new ConnectionRegistry();
  const wsHttpServer = createServer(connectionsApi(registry));
  const webSocketServer = webSocketApi(wsHttpServer, registry);
  const openSockets = trackSockets([httpServer, wsHttpServer]);
  const httpPort = await listen(httpServer, options.httpPort);
  const wsPort = await listen(wsHttpServer, options.wsPort);

  return {
    httpUrl: `http://127.0.0.1:${httpPort}`,
    wsUrl: `ws://127.0.0.1:${wsPort}`,
    managementEndpoint: `http://127.0.0.1:${wsPort}`,
    postCounts: registry.postCounts,
    dropConnectionSilently: (connectionId) => registry.dropSilently(connectionId),
    injectConnectionsFault: (fault) => registry.injectFault(fault),
    openConnectionIds: () => [...registry.open.keys()],
    async stop() {
      registry.dropAllSilently();
      webSocketServer.close();
      for (const socket of openSockets) socket.destroy();
      await Promise.all(
        [httpServer, wsHttpServer].map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
      );
    },
  };
}
