import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { verifyBearerToken } from '../../../shared/auth/jwt';
import { flattenClaimForLambda } from '../../../shared/auth/operators';
import { DomainError, ERROR_TABLE, type ErrorCode, UnauthorizedError } from '../../../shared/domain/errors';
import { MAX_BODY_BYTES } from '../../../shared/http/route';
import { errorResponse } from '../../../shared/http/responses';
import { logger } from '../../../shared/logger';
import { HTTP_ROUTES, type HttpRoute } from '../../routes';
import { lambdaContext, loadFunction } from '../lambda-runtime';
import { answerMismatch } from './answer-check';
import { httpApiEvent } from './events';
import { readBody, send, singleValueHeaders, sourceIpOf } from './http-wire';
import { VerifiedTokens } from './verified-tokens';

/**
 * The local HTTP API: matches the route table's routes, plays the JWT authorizer, and invokes the
 * route's handler with a payload-2.0 event. Local pages (the demo page, the JWKS, the docs) are
 * served beside the routes, as a CDN would serve them beside the API.
 */

/** API Gateway's hard limit on HTTP API payloads; the handlers refuse over 1 MiB themselves. */
export const MAX_GATEWAY_PAYLOAD_BYTES = 10 * 1024 * 1024;

export interface StaticRoute {
  path: string;
  contentType: string;
  body: () => string | Buffer;
}

export interface HttpApiOptions {
  staticRoutes?: StaticRoute[];
  /** Answers 503 on every route except /health's own 503 until the stack says it is ready. */
  isReady?: () => boolean;
  /** Tests: answer 500 when a success answer is not what its handler publishes (answer-check.ts). */
  checkAnswers?: boolean;
}

interface CompiledRoute {
  route: HttpRoute;
  pattern: RegExp;
  parameterNames: string[];
}

interface MatchedRoute {
  route: HttpRoute;
  pathParameters: Record<string, string>;
}

function compile(route: HttpRoute): CompiledRoute {
  const parameterNames: string[] = [];
  const source = route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([A-Za-z0-9_]+)\}/g, (_, name: string) => {
    parameterNames.push(name);
    return '([^/]+)';
  });
  return { route, pattern: new RegExp(`^${source}$`), parameterNames };
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

function matchRoute(routes: CompiledRoute[], method: string, pathname: string): MatchedRoute | undefined {
  for (const compiled of routes) {
    if (compiled.route.method !== method) continue;
    const match = compiled.pattern.exec(pathname);
    if (!match) continue;
    const pathParameters: Record<string, string> = {};
    compiled.parameterNames.forEach((name, index) => {
      pathParameters[name] = decodePathParameter(match[index + 1] ?? '');
    });
    return { route: compiled.route, pathParameters };
  }
  return undefined;
}

function sendError(response: ServerResponse, error: DomainError | Error, correlationId: string): void {
  send(response, errorResponse(error, correlationId) as APIGatewayProxyStructuredResultV2);
}

function sendJson(response: ServerResponse, statusCode: number, body: unknown, headers: Record<string, string> = {}) {
  send(response, {
    statusCode,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

/** A refusal the gateway answers itself, with the status the error table gives its code. */
function sendRefusal(response: ServerResponse, code: ErrorCode, message: string): void {
  sendJson(response, ERROR_TABLE[code].status, { error: { code, message } });
}

/** While the stack is starting: /health says "starting", every other route asks the caller to retry. */
function answerStarting(response: ServerResponse, route: HttpRoute): void {
  if (route.path === '/health') sendJson(response, 503, { status: 'starting' });
  else
    sendJson(
      response,
      503,
      { error: { code: 'INTERNAL', message: 'The local stack is starting.' } },
      { 'retry-after': '1' },
    );
}

/**
 * Plays API Gateway's JWT authorizer: the handler only ever sees verified claims. As the
 * authorizer does, array claims reach Lambda as one "[a b]" string. A refusal is a DomainError
 * (401), answered before any handler runs.
 */
async function verifiedClaims(
  tokens: VerifiedTokens,
  authorization: string | undefined,
): Promise<Record<string, unknown>> {
  const bearer = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  if (!bearer?.[1]) throw new UnauthorizedError('A bearer token is required.');
  return Object.fromEntries(
    Object.entries(await tokens.claims(bearer[1])).map(([name, value]) => [name, flattenClaimForLambda(value)]),
  );
}

/** The request listener of the HTTP API's server. */
export function httpApi(options: HttpApiOptions): RequestListener {
  const routes = HTTP_ROUTES.map(compile);
  const staticRoutes = new Map((options.staticRoutes ?? []).map((route) => [route.path, route]));
  const tokens = new VerifiedTokens(verifyBearerToken);

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
    const matched = matchRoute(routes, method, url.pathname);
    if (!matched) return sendRefusal(response, 'NOT_FOUND', 'No such route.');
    if (options.isReady && !options.isReady()) return answerStarting(response, matched.route);
    const body = await readBody(request, Math.max(MAX_GATEWAY_PAYLOAD_BYTES, MAX_BODY_BYTES + 1));
    if (body === 'too-large') return sendRefusal(response, 'PAYLOAD_TOO_LARGE', 'The request body is too large.');
    const headers = singleValueHeaders(request);
    const { route } = matched;
    let claims: Record<string, unknown> | undefined;
    if (route.auth === 'jwt') {
      try {
        claims = await verifiedClaims(tokens, headers.authorization);
      } catch (error) {
        if (error instanceof DomainError) return sendError(response, error, requestId);
        throw error;
      }
    }
    const event = httpApiEvent({
      route,
      method,
      url,
      headers,
      pathParameters: matched.pathParameters,
      sourceIp: sourceIpOf(request),
      requestId,
      body,
      claims,
    });
    const result = await loadFunction(route.handler, route.access)(event, lambdaContext(route.name));
    const mismatch =
      options.checkAnswers && typeof result !== 'string'
        ? answerMismatch(route, result as APIGatewayProxyStructuredResultV2)
        : undefined;
    if (mismatch !== undefined)
      return sendJson(response, ERROR_TABLE.INTERNAL.status, {
        error: { code: 'INTERNAL', message: `The answer is not what the route publishes: ${mismatch}` },
      });
    // A handler may return a bare string: API Gateway answers it as a 200 JSON body.
    if (typeof result === 'string')
      send(response, { statusCode: 200, headers: { 'content-type': 'application/json' }, body: result });
    else send(response, result as APIGatewayProxyStructuredResultV2);
  }

  return (request, response) => {
    void handleHttp(request, response).catch((error: unknown) => {
      logger.error('local gateway failure', { error: error instanceof Error ? error : String(error) });
      if (!response.headersSent) sendError(response, new Error('gateway failure'), randomUUID());
    });
  };
}
