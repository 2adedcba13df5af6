import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { logger } from '../../../shared/logger';
import { WEBSOCKET_AUTHORIZER, WEBSOCKET_ROUTES } from '../../routes';
import { lambdaContext, loadFunction } from '../lambda-runtime';
import { type ConnectionRegistry, MAX_WEBSOCKET_MESSAGE_BYTES, type OpenConnection } from './connections';
import { type WebSocketConnectionFacts, webSocketRequestContext } from './events';
import { queryParameters, singleValueHeaders, sourceIpOf, STAGE } from './http-wire';

/**
 * The local WebSocket API: $connect runs the REQUEST authorizer (a refusal is a 401 at the
 * upgrade) and then the $connect route, frames are routed by `$request.body.action`, and a
 * closed socket runs $disconnect, except after a silent drop (a client that vanished).
 */

/** API Gateway connection ids look like `L0SM9cOFvHcCIhw=`. */
function newConnectionId(): string {
  return randomBytes(10).toString('base64');
}

const errorField = (error: unknown) => (error instanceof Error ? error : String(error));

interface UpgradeRequest {
  headers: Record<string, string>;
  queryStringParameters: Record<string, string>;
}

interface AuthorizerResult {
  principalId: string;
  policyDocument: { Statement: Array<{ Effect: string }> };
  context?: Record<string, unknown>;
}

/** The REQUEST authorizer's principal and context, or undefined when it denies or fails (AWS: 401). */
async function authorizeConnect(
  upgrade: UpgradeRequest,
  connection: Omit<WebSocketConnectionFacts, 'authorizer'>,
): Promise<Record<string, unknown> | undefined> {
  try {
    const result = (await loadFunction(WEBSOCKET_AUTHORIZER.handler, WEBSOCKET_AUTHORIZER.access)(
      {
        type: 'REQUEST',
        methodArn: `arn:aws:execute-api:local:000000000000:local/${STAGE}/$connect`,
        ...upgrade,
        requestContext: webSocketRequestContext({ ...connection, authorizer: {} }, '$connect', 'CONNECT'),
      },
      lambdaContext(WEBSOCKET_AUTHORIZER.name),
    )) as AuthorizerResult;
    if (!result.policyDocument.Statement.every((statement) => statement.Effect === 'Allow')) return undefined;
    return { principalId: result.principalId, ...(result.context ?? {}) };
  } catch {
    return undefined;
  }
}

/** Runs the $connect route; a non-2xx answer refuses the upgrade with that status. */
async function refusalByConnectRoute(
  upgrade: UpgradeRequest,
  connection: WebSocketConnectionFacts,
): Promise<number | undefined> {
  const connectRoute = WEBSOCKET_ROUTES.find((route) => route.routeKey === '$connect');
  if (!connectRoute) return undefined;
  const result = (await loadFunction(connectRoute.handler, connectRoute.access)(
    { requestContext: webSocketRequestContext(connection, '$connect', 'CONNECT'), ...upgrade, isBase64Encoded: false },
    lambdaContext(connectRoute.name),
  )) as { statusCode?: number } | undefined;
  const status = result?.statusCode;
  return status !== undefined && (status < 200 || status > 299) ? status : undefined;
}

/** Route selection: `$request.body.action`, $default when the frame is not JSON or names no route. */
function routeFor(body: string) {
  let action: unknown;
  try {
    action = (JSON.parse(body) as { action?: unknown } | null)?.action;
  } catch {
    action = undefined;
  }
  return (
    WEBSOCKET_ROUTES.find(
      (candidate) => typeof action === 'string' && !candidate.routeKey.startsWith('$') && candidate.routeKey === action,
    ) ?? WEBSOCKET_ROUTES.find((candidate) => candidate.routeKey === '$default')
  );
}

async function dispatchMessage(connection: OpenConnection, body: string): Promise<void> {
  const route = routeFor(body);
  if (!route) return;
  const { socket } = connection;
  try {
    const result = (await loadFunction(route.handler, route.access)(
      { requestContext: webSocketRequestContext(connection, route.routeKey, 'MESSAGE'), body, isBase64Encoded: false },
      lambdaContext(route.name),
    )) as { body?: string } | undefined;
    // Only routes with a route response answer the client, as API Gateway's two-way routes.
    if (route.returnResponse && typeof result?.body === 'string' && socket.readyState === WebSocket.OPEN)
      socket.send(result.body);
  } catch (error) {
    logger.error('websocket route failed', { route: route.routeKey, error: errorField(error) });
    if (socket.readyState === WebSocket.OPEN)
      socket.send(JSON.stringify({ message: 'Internal server error', connectionId: connection.connectionId }));
  }
}

function runDisconnect(connection: OpenConnection): void {
  const disconnect = WEBSOCKET_ROUTES.find((route) => route.routeKey === '$disconnect');
  if (!disconnect) return;
  void loadFunction(disconnect.handler, disconnect.access)(
    { requestContext: webSocketRequestContext(connection, '$disconnect', 'DISCONNECT'), isBase64Encoded: false },
    lambdaContext(disconnect.name),
  ).catch((error: unknown) => logger.error('$disconnect failed', { error: errorField(error) }));
}

/** Listens to an accepted socket: its frames, its errors and its close. */
function attach(registry: ConnectionRegistry, connection: OpenConnection): void {
  const { socket, connectionId } = connection;
  registry.add(connection);
  // A frame over 128 KB or a broken frame: ws closes the connection (1009/1002), as API
  // Gateway does; without a listener the error would crash the whole local stack.
  socket.on('error', (error) =>
    logger.info('websocket connection closed on a bad frame', { connectionId, reason: error.message }),
  );
  socket.on('message', (data, isBinary) => {
    registry.markActive(connectionId);
    const body = isBinary ? Buffer.from(data as Buffer).toString('base64') : data.toString();
    void dispatchMessage(connection, body);
  });
  socket.on('close', () => {
    const closed = registry.closed(connectionId);
    if (closed) runDisconnect(closed);
  });
}

/** Serves WebSocket upgrades on `server`, keeping the open connections in `registry`. */
export function webSocketApi(server: Server, registry: ConnectionRegistry): WebSocketServer {
  const webSocketServer = new WebSocketServer({ noServer: true, maxPayload: MAX_WEBSOCKET_MESSAGE_BYTES });

  async function upgrade(request: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const headers = singleValueHeaders(request);
    const upgradeRequest = {
      headers,
      queryStringParameters: queryParameters(new URL(request.url ?? '/', 'http://127.0.0.1')) ?? {},
    };
    const now = Date.now();
    const facts = {
      connectionId: newConnectionId(),
      connectedAt: now,
      sourceIp: sourceIpOf(request),
      userAgent: headers['user-agent'] ?? '',
    };
    const authorizer = await authorizeConnect(upgradeRequest, facts);
    if (!authorizer) {
      socket.end(
        'HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"message":"Unauthorized"}',
      );
      return;
    }
    const refusal = await refusalByConnectRoute(upgradeRequest, { ...facts, authorizer });
    if (refusal !== undefined) {
      socket.end(`HTTP/1.1 ${refusal} Refused\r\nconnection: close\r\n\r\n`);
      return;
    }
    webSocketServer.handleUpgrade(request, socket, head, (webSocket) =>
      attach(registry, { ...facts, authorizer, socket: webSocket, lastActiveAt: now }),
    );
  }

  server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    void upgrade(request, socket, head).catch((error: unknown) => {
      logger.error('websocket upgrade failed', { error: errorField(error) });
      socket.destroy();
    });
  });
  return webSocketServer;
}
