import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { WebSocket } from 'ws';
import { logger } from '../../../shared/logger';
import type { WebSocketConnectionFacts } from './events';
import { readBody } from './http-wire';

/**
 * The WebSocket API's open connections, and the @connections management API that
 * @aws-sdk/client-apigatewaymanagementapi calls on them: POST sends a frame, DELETE closes,
 * GET describes the connection. A connection that is gone answers 410 (GoneException), as on AWS.
 */

/** API Gateway refuses WebSocket messages over 128 KB (docs/DESIGN.md, "What AWS allows"). */
export const MAX_WEBSOCKET_MESSAGE_BYTES = 128 * 1024;

/** Makes the next `times` @connections calls fail, as API Gateway sometimes does (tests, benchmark). */
export interface ConnectionsFault {
  kind: 'gone' | 'throttle';
  times: number;
}

export interface OpenConnection extends WebSocketConnectionFacts {
  socket: WebSocket;
  /** When the client last sent a frame (epoch ms); the GET's lastActiveAt. */
  lastActiveAt: number;
}

export class ConnectionRegistry {
  readonly open = new Map<string, OpenConnection>();
  /** postToConnection calls per connection id (the benchmark reads it). */
  readonly postCounts = new Map<string, number>();
  private readonly faults: ConnectionsFault[] = [];
  /** Closed on purpose without $disconnect: a vanished client, or the gateway stopping. */
  private readonly silentlyDropped = new Set<string>();

  add(connection: OpenConnection): void {
    this.open.set(connection.connectionId, connection);
  }

  markActive(connectionId: string): void {
    const connection = this.open.get(connectionId);
    if (connection) connection.lastActiveAt = Date.now();
  }

  /** Forgets a closed connection and returns it when its $disconnect is due (not after a silent drop). */
  closed(connectionId: string): OpenConnection | undefined {
    const connection = this.open.get(connectionId);
    this.open.delete(connectionId);
    if (this.silentlyDropped.delete(connectionId)) return undefined;
    return connection;
  }

  dropSilently(connectionId: string): void {
    const connection = this.open.get(connectionId);
    if (!connection) return;
    this.silentlyDropped.add(connectionId);
    connection.socket.terminate();
  }

  dropAllSilently(): void {
    for (const connectionId of [...this.open.keys()]) this.dropSilently(connectionId);
  }

  injectFault(fault: ConnectionsFault): void {
    this.faults.push({ ...fault });
  }

  /** The next injected fault, counted down, or undefined when none is pending. */
  takeFault(): ConnectionsFault['kind'] | undefined {
    const fault = this.faults[0];
    if (!fault) return undefined;
    fault.times -= 1;
    if (fault.times <= 0) this.faults.shift();
    return fault.kind;
  }
}

function managementError(response: ServerResponse, status: number, type: string, message: string): void {
  response.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': type });
  response.end(JSON.stringify({ message }));
}

const gone = (response: ServerResponse) => managementError(response, 410, 'GoneException', 'Gone');

async function postToConnection(
  registry: ConnectionRegistry,
  connectionId: string,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const body = await readBody(request, MAX_WEBSOCKET_MESSAGE_BYTES);
  if (body === 'too-large') return managementError(response, 413, 'PayloadTooLargeException', 'Message too long');
  registry.postCounts.set(connectionId, (registry.postCounts.get(connectionId) ?? 0) + 1);
  const connection = registry.open.get(connectionId);
  if (!connection || connection.socket.readyState !== WebSocket.OPEN) return gone(response);
  // A text frame, as API Gateway sends it, from the bytes as posted (no decode and re-encode).
  connection.socket.send(body, { binary: false });
  response.writeHead(200);
  response.end();
}

/**
 * GetConnection's answer, in the REST-JSON member names the SDK's deserializer reads
 * (`connectedAt`, `identity.sourceIp`, `identity.userAgent`, `lastActiveAt`, ISO 8601 dates).
 */
export function connectionDescription(connection: OpenConnection) {
  return {
    connectedAt: new Date(connection.connectedAt).toISOString(),
    identity: { sourceIp: connection.sourceIp, userAgent: connection.userAgent },
    lastActiveAt: new Date(connection.lastActiveAt).toISOString(),
  };
}

async function handleManagement(
  registry: ConnectionRegistry,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://127.0.0.1');
  // `/<stage>/@connections/<id>`; the SDK leaves the stage out when the endpoint names none.
  const match = /^(?:\/[^/]+)?\/@connections\/([^/]+)$/.exec(url.pathname);
  if (!match?.[1]) return managementError(response, 404, 'NotFoundException', 'Not Found');
  const connectionId = decodeURIComponent(match[1]);
  const fault = registry.takeFault();
  if (fault === 'gone') return gone(response);
  if (fault === 'throttle') return managementError(response, 429, 'LimitExceededException', 'Rate exceeded');
  const method = (request.method ?? 'GET').toUpperCase();
  if (method === 'POST') return postToConnection(registry, connectionId, request, response);
  const connection = registry.open.get(connectionId);
  if (!connection) return gone(response);
  if (method === 'DELETE') {
    connection.socket.close(1000);
    response.writeHead(204);
    response.end();
    return;
  }
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end(JSON.stringify(connectionDescription(connection)));
}

/** The request listener of the @connections API (it shares the WebSocket API's port). */
export function connectionsApi(registry: ConnectionRegistry): RequestListener {
  return (request, response) => {
    void handleManagement(registry, request, response).catch((error: unknown) => {
      logger.error('local @connections failure', { error: error instanceof Error ? error : String(error) });
      if (!response.headersSent) {
        response.writeHead(500);
        response.end();
      }
    });
  };
}
