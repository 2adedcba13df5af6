import { randomBytes, randomUUID } from 'node:crypto';
import type { HttpRoute } from '../../routes';
import { queryParameters, STAGE } from './http-wire';

/**
 * The events the local gateway hands to Lambda handlers, in the shapes API Gateway builds them:
 * the HTTP API's payload format 2.0, and the WebSocket API's requestContext. Handlers read these
 * fields on AWS, so a field missing here is a bug that only shows after a deploy.
 */

/** The HTTP request as the gateway has read it, before it becomes an event. */
export interface HttpRequestFacts {
  route: HttpRoute;
  method: string;
  url: URL;
  headers: Record<string, string>;
  pathParameters: Record<string, string>;
  sourceIp: string;
  requestId: string;
  body: Buffer;
  /** The JWT authorizer's verified claims, on `auth: 'jwt'` routes only. */
  claims: Record<string, unknown> | undefined;
}

/** Bodies API Gateway passes as text; anything else reaches Lambda base64-encoded. */
function isTextual(contentType: string | undefined): boolean {
  return contentType === undefined || /json|text|x-www-form-urlencoded|xml|javascript/i.test(contentType);
}

/** An HTTP API event, payload format 2.0. */
export function httpApiEvent(request: HttpRequestFacts) {
  const { route, method, url, headers, body, claims } = request;
  const textual = isTextual(headers['content-type']);
  const now = Date.now();
  const routeKey = `${route.method} ${route.path}`;
  const query = queryParameters(url);
  return {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ''),
    headers,
    ...(query && { queryStringParameters: query }),
    ...(Object.keys(request.pathParameters).length > 0 && { pathParameters: request.pathParameters }),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? '127.0.0.1',
      domainPrefix: 'local',
      http: {
        method,
        path: url.pathname,
        protocol: 'HTTP/1.1',
        sourceIp: request.sourceIp,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: request.requestId,
      routeKey,
      stage: STAGE,
      time: new Date(now).toISOString(),
      timeEpoch: now,
      ...(claims && { authorizer: { jwt: { claims, scopes: null } } }),
    },
    ...(body.length > 0 && { body: textual ? body.toString('utf8') : body.toString('base64') }),
    isBase64Encoded: body.length > 0 && !textual,
  };
}

/** What a WebSocket connection carries from $connect into every later event of it. */
export interface WebSocketConnectionFacts {
  connectionId: string;
  connectedAt: number;
  sourceIp: string;
  userAgent: string;
  /** The REQUEST authorizer's principal and context ({} while the authorizer itself runs). */
  authorizer: Record<string, unknown>;
}

/** The requestContext of a WebSocket API event ($connect, a message, $disconnect). */
export function webSocketRequestContext(
  connection: WebSocketConnectionFacts,
  routeKey: string,
  eventType: 'CONNECT' | 'MESSAGE' | 'DISCONNECT',
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
    connectedAt: connection.connectedAt,
    requestTimeEpoch: now,
    identity: { sourceIp: connection.sourceIp, userAgent: connection.userAgent },
    requestId: randomUUID(),
    domainName: '127.0.0.1',
    connectionId: connection.connectionId,
    apiId: 'local',
    authorizer: connection.authorizer,
  };
}
