import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, WebSocket } from 'ws';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { verifyBearerToken } from '../../shared/auth/jwt';
import { flattenClaimForLambda } from '../../shared/auth/operators';
import { DomainError, UnauthorizedError } from '../../shared/domain/errors';
import { MAX_BODY_BYTES } from '../../shared/http/route';
import { errorResponse } from '../../shared/http/responses';
import { logger } from '../../shared/logger';
import { HTTP_ROUTES, WEBSOCKET_AUTHORIZER, WEBSOCKET_ROUTES, type HttpRoute } from '../routes';
import { lambdaContext, loadHandler } from './lambda-runtime';

/** API Gateway refuses WebSocket messages over 128 KB (DESIGN.md, Scale). */
export const MAX_WEBSOCKET_MESSAGE_BYTES = 128 * 1024;
/** API Gateway's hard limit on HTTP API payloads; the handlers refuse over 1 MiB themselves. */
export const MAX_GATEWAY_PAYLOAD_BYTES = 10 * 1024 * 1024;
const STAGE = '$default';

export interface StaticRoute {
  path: string;
  contentType: string;
  body: () => string | Buffer;
}

export interface GatewayOptions {
  httpPort: number;
  wsPort: number;
  /** Extra local pages (the demo page, the JWKS, the docs). */
  staticRoutes?: StaticRoute[];
  /** Answers 503 on every route except /health's own 503 until the stack says it is ready. */
  isReady?: () => boolean;
}

export interface ConnectionsFault {
  kind: 'gone' | 'throttle';
  times: number;
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

interface CompiledRoute {
  route: HttpRoute;
  pattern: RegExp;
  parameterNames: string[];
}

function compile(route: HttpRoute): CompiledRoute {
  const parameterNames: string[] = [];
  const source = route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([A-Za-z0-9_]+)\}/g, (_, name: string) => {
    parameterNames.push(name);
    return '([^/]+)';
  });
  return { route, pattern: new RegExp(`^${source}$`), parameterNames };
}

function send(response: ServerResponse, result: APIGatewayProxyStructuredResultV2 | undefined): void {
  const status = result?.statusCode ?? 200;
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(result?.headers ?? {})) headers[key] = String(value);
  const body =
    result?.body === undefined ? '' : result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body;
  response.writeHead(status, headers);
  response.end(body);
}

function sendError(response: ServerResponse, error: DomainError | Error, correlationId: string): void {
  send(response, errorResponse(error, correlationId) as APIGatewayProxyStructuredResultV2);
}

async function readBody(request: IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) return 'too-large';
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

function singleValueHeaders(request: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    // API Gateway (payload 2.0) joins repeated headers with commas.
    headers[key.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  return headers;
}

function queryParameters(url: URL): Record<string, string> | undefined {
  const result: Record<string, string> = {};
  for (const key of new Set(url.searchParams.keys())) result[key] = url.searchParams.getAll(key).join(',');
  return Object.keys(result).length > 0 ? result : undefined;
}

function isTextual(contentType: string | undefined): boolean {
  return contentType === undefined || /json|text|x-www-form-urlencoded|xml|javascript/i.test(contentType);
}

/**
 * Path parameters arrive percent-decoded. A malformed escape (`%`, `%zz`, an encoded lone
 * surrogate) is passed through as it came, for the route's schema to refuse with a 400,
 * instead of failing the whole request.
 */
function decodePathParameter(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** API Gateway connection ids look like `L0SM9cOFvHcCIhw=`. */
function newConnectionId(): string {
  return randomBytes(10).toString('base64');
}

/**
 * The local API Gateway: the HTTP API (payload format 2.0 events, the JWT authorizer's checks),
 * the WebSocket API ($connect with the REQUEST authorizer, routes by `$request.body.action`,
 * $disconnect), and the @connections management API the SDK calls, GoneException included.
 */
export async function startGateway(options: GatewayOptions): Promise<LocalGateway> {
  const routes = HTTP_ROUTES.map(compile);
  const staticRoutes = new Map((options.staticRoutes ?? []).map((route) => [route.path, route]));
  const sockets = new Map<
    string,
    { socket: WebSocket; connectedAt: number; authorizer: Record<string, unknown>; sourceIp: string }
  >();
  const postCounts = new Map<string, number>();
  const faults: ConnectionsFault[] = [];
  const openSockets = new Set<Socket>();

  const httpServer = createServer((request, response) => {
    void handleHttp(request, response).catch((error: unknown) => {
      logger.error('local gateway failure', { error: error instanceof Error ? error : String(error) });
      if (!response.headersSent) sendError(response, new Error('gateway failure'), randomUUID());
    });
  });

  async function handleHttp(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    // As API Gateway does: the request id (the functions' correlation id) on every answer.
    response.setHeader('apigw-requestid', requestId);
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const method = (request.method ?? 'GET').toUpperCase();
    const staticRoute = method === 'GET' ? staticRoutes.get(url.pathname) : undefined;
    if (staticRoute) {
      response.writeHead(200, { 'content-type': staticRoute.contentType, 'cache-control': 'no-store' });
      response.end(staticRoute.body());
      return;
    }
    let matched: { compiled: CompiledRoute; parameters: Record<string, string> } | undefined;
    for (const compiled of routes) {
      if (compiled.route.method !== method) continue;
      const match = compiled.pattern.exec(url.pathname);
      if (!match) continue;
      const parameters: Record<string, string> = {};
      compiled.parameterNames.forEach((name, index) => {
        parameters[name] = decodePathParameter(match[index + 1] ?? '');
      });
      matched = { compiled, parameters };
      break;
    }
    if (!matched) {
      send(response, {
        statusCode: 404,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ error: { code: 'NOT_FOUND', message: 'No such route.' } }),
      });
      return;
    }
    if (options.isReady && !options.isReady() && matched.compiled.route.path !== '/health') {
      send(response, {
        statusCode: 503,
        headers: { 'content-type': 'application/json', 'retry-after': '1' },
        body: JSON.stringify({ error: { code: 'INTERNAL', message: 'The local stack is starting.' } }),
      });
      return;
    }
    if (options.isReady && !options.isReady()) {
      send(response, {
        statusCode: 503,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ status: 'starting' }),
      });
      return;
    }
    const body = await readBody(request, Math.max(MAX_GATEWAY_PAYLOAD_BYTES, MAX_BODY_BYTES + 1));
    if (body === 'too-large') {
      send(response, {
        statusCode: 413,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ error: { code: 'PAYLOAD_TOO_LARGE', message: 'The request body is too large.' } }),
      });
      return;
    }
    const headers = singleValueHeaders(request);
    const { route } = matched.compiled;
    let claims: Record<string, unknown> | undefined;
    if (route.auth === 'jwt') {
      // Plays API Gateway's JWT authorizer: the handler only ever sees verified claims.
      const bearer = /^Bearer\s+(\S+)$/i.exec(headers.authorization ?? '');
      try {
        if (!bearer?.[1]) throw new UnauthorizedError('A bearer token is required.');
        // As API Gateway's JWT authorizer does, array claims reach Lambda as one "[a b]" string.
        claims = Object.fromEntries(
          Object.entries(await verifyBearerToken(bearer[1])).map(([name, value]) => [
            name,
            flattenClaimForLambda(value),
          ]),
        );
      } catch (error) {
        if (error instanceof DomainError) return sendError(response, error, requestId);
        throw error;
      }
    }
    const textual = isTextual(headers['content-type']);
    const now = Date.now();
    const routeKey = `${route.method} ${route.path}`;
    const event = {
      version: '2.0',
      routeKey,
      rawPath: url.pathname,
      rawQueryString: url.search.replace(/^\?/, ''),
      headers,
      ...(queryParameters(url) && { queryStringParameters: queryParameters(url) }),
      ...(matched.compiled.parameterNames.length > 0 && { pathParameters: matched.parameters }),
      requestContext: {
        accountId: '000000000000',
        apiId: 'local',
        domainName: headers.host ?? '127.0.0.1',
        domainPrefix: 'local',
        http: {
          method,
          path: url.pathname,
          protocol: 'HTTP/1.1',
          sourceIp: request.socket.remoteAddress ?? '127.0.0.1',
          userAgent: headers['user-agent'] ?? '',
        },
        requestId,
        routeKey,
        stage: STAGE,
        time: new Date(now).toISOString(),
        timeEpoch: now,
        ...(claims && { authorizer: { jwt: { claims, scopes: null } } }),
      },
      ...(body.length > 0 && { body: textual ? body.toString('utf8') : body.toString('base64') }),
      isBase64Encoded: body.length > 0 && !textual,
    };
    const result = await loadHandler(route.handler)(event, lambdaContext(route.name));
    if (typeof result === 'string') {
      send(response, { statusCode: 200, headers: { 'content-type': 'application/json' }, body: result });
    } else {
      send(response, result as APIGatewayProxyStructuredResultV2);
    }
  }

  // ---- WebSocket API and its @connections management API, on their own port ----
  const wsHttpServer = createServer((request, response) => {
    void handleManagement(request, response).catch((error: unknown) => {
      logger.error('local @connections failure', { error: error instanceof Error ? error : String(error) });
      if (!response.headersSent) {
        response.writeHead(500);
        response.end();
      }
    });
  });
  const webSocketServer = new WebSocketServer({ noServer: true, maxPayload: MAX_WEBSOCKET_MESSAGE_BYTES });

  function managementError(response: ServerResponse, status: number, type: string, message: string): void {
    response.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': type });
    response.end(JSON.stringify({ message }));
  }

  async function handleManagement(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const match = /^(?:\/[^/]+)?\/@connections\/([^/]+)$/.exec(url.pathname);
    if (!match?.[1]) return managementError(response, 404, 'NotFoundException', 'Not Found');
    const connectionId = decodeURIComponent(match[1]);
    const fault = faults[0];
    if (fault) {
      fault.times -= 1;
      if (fault.times <= 0) faults.shift();
      if (fault.kind === 'gone') return managementError(response, 410, 'GoneException', 'Gone');
      return managementError(response, 429, 'LimitExceededException', 'Rate exceeded');
    }
    const entry = sockets.get(connectionId);
    const method = (request.method ?? 'GET').toUpperCase();
    if (method === 'POST') {
      const body = await readBody(request, MAX_WEBSOCKET_MESSAGE_BYTES);
      if (body === 'too-large') return managementError(response, 413, 'PayloadTooLargeException', 'Message too long');
      postCounts.set(connectionId, (postCounts.get(connectionId) ?? 0) + 1);
      if (!entry || entry.socket.readyState !== WebSocket.OPEN)
        return managementError(response, 410, 'GoneException', 'Gone');
      // A text frame, as API Gateway sends it, from the bytes as posted (no decode and re-encode).
      entry.socket.send(body, { binary: false });
      response.writeHead(200);
      response.end();
      return;
    }
    if (!entry) return managementError(response, 410, 'GoneException', 'Gone');
    if (method === 'DELETE') {
      entry.socket.close(1000);
      response.writeHead(204);
      response.end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify({
        ConnectedAt: new Date(entry.connectedAt).toISOString(),
        Identity: { SourceIp: entry.sourceIp },
        LastActiveAt: new Date().toISOString(),
      }),
    );
  }

  function wsRequestContext(
    connectionId: string,
    routeKey: string,
    eventType: 'CONNECT' | 'MESSAGE' | 'DISCONNECT',
    connectedAt: number,
    authorizer: Record<string, unknown>,
    sourceIp: string,
  ) {
    const now = Date.now();
    return {
      routeKey,
      eventType,
      messageId: eventType === 'MESSAGE' ? randomBytes(8).toString('base64') : undefined,
      extendedRequestId: randomUUID(),
      requestTime: new Date(now).toUTCString(),
      messageDirection: 'IN',
      stage: STAGE,
      connectedAt,
      requestTimeEpoch: now,
      identity: { sourceIp },
      requestId: randomUUID(),
      domainName: '127.0.0.1',
      connectionId,
      apiId: 'local',
      authorizer,
    };
  }

  wsHttpServer.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    void (async () => {
      const url = new URL(request.url ?? '/', 'http://127.0.0.1');
      const queryStringParameters = queryParameters(url) ?? {};
      const headers = singleValueHeaders(request);
      const connectionId = newConnectionId();
      const connectedAt = Date.now();
      const sourceIp = request.socket.remoteAddress ?? '127.0.0.1';
      let authorizer: Record<string, unknown>;
      try {
        const result = (await loadHandler(WEBSOCKET_AUTHORIZER.handler)(
          {
            type: 'REQUEST',
            methodArn: `arn:aws:execute-api:local:000000000000:local/${STAGE}/$connect`,
            headers,
            queryStringParameters,
            requestContext: wsRequestContext(connectionId, '$connect', 'CONNECT', connectedAt, {}, sourceIp),
          },
          lambdaContext(WEBSOCKET_AUTHORIZER.name),
        )) as {
          principalId: string;
          policyDocument: { Statement: Array<{ Effect: string }> };
          context?: Record<string, unknown>;
        };
        if (!result.policyDocument.Statement.every((statement) => statement.Effect === 'Allow'))
          throw new Error('Unauthorized');
        authorizer = { principalId: result.principalId, ...(result.context ?? {}) };
      } catch {
        socket.end(
          'HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"message":"Unauthorized"}',
        );
        return;
      }
      const connectRoute = WEBSOCKET_ROUTES.find((route) => route.routeKey === '$connect');
      if (connectRoute) {
        const result = (await loadHandler(connectRoute.handler)(
          {
            requestContext: wsRequestContext(connectionId, '$connect', 'CONNECT', connectedAt, authorizer, sourceIp),
            headers,
            queryStringParameters,
            isBase64Encoded: false,
          },
          lambdaContext(connectRoute.name),
        )) as { statusCode?: number } | undefined;
        if (result?.statusCode !== undefined && (result.statusCode < 200 || result.statusCode > 299)) {
          socket.end(`HTTP/1.1 ${result.statusCode} Refused\r\nconnection: close\r\n\r\n`);
          return;
        }
      }
      webSocketServer.handleUpgrade(request, socket, head, (webSocket) => {
        sockets.set(connectionId, { socket: webSocket, connectedAt, authorizer, sourceIp });
        // A frame over 128 KB or a broken frame: ws closes the connection (1009/1002), as API
        // Gateway does; without a listener the error would crash the whole local stack.
        webSocket.on('error', (error) =>
          logger.info('websocket connection closed on a bad frame', { connectionId, reason: error.message }),
        );
        webSocket.on('message', (data, isBinary) => {
          const body = isBinary ? Buffer.from(data as Buffer).toString('base64') : data.toString();
          void dispatchMessage(connectionId, webSocket, body, connectedAt, authorizer, sourceIp);
        });
        webSocket.on('close', () => {
          const entry = sockets.get(connectionId);
          sockets.delete(connectionId);
          if (!entry || silentlyDropped.has(connectionId)) {
            silentlyDropped.delete(connectionId);
            return;
          }
          const disconnect = WEBSOCKET_ROUTES.find((route) => route.routeKey === '$disconnect');
          if (disconnect) {
            void loadHandler(disconnect.handler)(
              {
                requestContext: wsRequestContext(
                  connectionId,
                  '$disconnect',
                  'DISCONNECT',
                  connectedAt,
                  authorizer,
                  sourceIp,
                ),
                isBase64Encoded: false,
              },
              lambdaContext(disconnect.name),
            ).catch((error: unknown) =>
              logger.error('$disconnect failed', { error: error instanceof Error ? error : String(error) }),
            );
          }
        });
      });
    })().catch((error: unknown) => {
      logger.error('websocket upgrade failed', { error: error instanceof Error ? error : String(error) });
      socket.destroy();
    });
  });

  const silentlyDropped = new Set<string>();

  async function dispatchMessage(
    connectionId: string,
    webSocket: WebSocket,
    body: string,
    connectedAt: number,
    authorizer: Record<string, unknown>,
    sourceIp: string,
  ): Promise<void> {
    // Route selection: `$request.body.action`, $default when the frame is not JSON or names no route.
    let action: unknown;
    try {
      action = (JSON.parse(body) as { action?: unknown } | null)?.action;
    } catch {
      action = undefined;
    }
    const route =
      WEBSOCKET_ROUTES.find(
        (candidate) =>
          typeof action === 'string' && !candidate.routeKey.startsWith('$') && candidate.routeKey === action,
      ) ?? WEBSOCKET_ROUTES.find((candidate) => candidate.routeKey === '$default');
    if (!route) return;
    try {
      const result = (await loadHandler(route.handler)(
        {
          requestContext: wsRequestContext(connectionId, route.routeKey, 'MESSAGE', connectedAt, authorizer, sourceIp),
          body,
          isBase64Encoded: false,
        },
        lambdaContext(route.name),
      )) as { body?: string } | undefined;
      if (route.returnResponse && typeof result?.body === 'string' && webSocket.readyState === WebSocket.OPEN)
        webSocket.send(result.body);
    } catch (error) {
      logger.error('websocket route failed', {
        route: route.routeKey,
        error: error instanceof Error ? error : String(error),
      });
      if (webSocket.readyState === WebSocket.OPEN)
        webSocket.send(JSON.stringify({ message: 'Internal server error', connectionId }));
    }
  }

  for (const server of [httpServer, wsHttpServer])
    server.on('connection', (socket: Socket) => {
      openSockets.add(socket);
      socket.once('close', () => openSockets.delete(socket));
    });

  const listen = (server: Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  const httpPort = await listen(httpServer, options.httpPort);
  const wsPort = await listen(wsHttpServer, options.wsPort);

  return {
    httpUrl: `http://127.0.0.1:${httpPort}`,
    wsUrl: `ws://127.0.0.1:${wsPort}`,
    managementEndpoint: `http://127.0.0.1:${wsPort}`,
    postCounts,
    dropConnectionSilently(connectionId) {
      const entry = sockets.get(connectionId);
      if (!entry) return;
      silentlyDropped.add(connectionId);
      entry.socket.terminate();
    },
    injectConnectionsFault(fault) {
      faults.push({ ...fault });
    },
    openConnectionIds: () => [...sockets.keys()],
    async stop() {
      for (const { socket } of sockets.values()) {
        silentlyDropped.add([...sockets.entries()].find(([, entry]) => entry.socket === socket)?.[0] ?? '');
        socket.terminate();
      }
      webSocketServer.close();
      for (const socket of openSockets) socket.destroy();
      await Promise.all(
        [httpServer, wsHttpServer].map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
      );
    },
  };
}
