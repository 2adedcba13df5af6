import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import type * as z from 'zod';
import { createHash } from 'node:crypto';
import { IdempotencyKeyRequiredError, PayloadTooLargeError, ValidationError, type ErrorDetail } from '../domain/errors';
import type { Caller } from '../domain/identity';
import { runInvocation } from '../observability/invocation';
import { assertOperator, isOperator } from '../auth/operators';
import { callerFromClaims } from './caller';
import { type RequestClass, userRateLimiter, whileCounting } from './rate-limit';
import { errorResponse, jsonResponse } from './responses';

/** docs/API.md: a request body over 1 MiB is refused with 413. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** docs/API.md: an Idempotency-Key is 1-255 printable ASCII characters. */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x20-\x7E]{1,255}$/;

/** The event as the JWT authorizer leaves it (payload format 2.0). */
export type HttpEvent = APIGatewayProxyEventV2 & {
  requestContext: APIGatewayProxyEventV2['requestContext'] & {
    authorizer?: { jwt?: { claims?: Record<string, unknown>; scopes?: string[] | null } };
  };
};

export interface HttpRequest<Body, Query, Path> {
  body: Body;
  query: Query;
  path: Path;
  /** Present on authenticated routes. */
  caller: Caller;
  /** Present on idempotent routes. */
  idempotency: { key: string; fingerprint: string };
  correlationId: string;
  event: HttpEvent;
}

export interface HttpAnswer<Body = unknown> {
  status: number;
  body: Body;
  headers?: Record<string, string>;
}

/** A route's success answer as the contract states it: published for the OpenAPI document. */
export interface RouteResponse<Schema extends z.ZodType = z.ZodType> {
  status: number;
  schema: Schema;
}

interface RouteSpec<
  BodySchema extends z.ZodType,
  QuerySchema extends z.ZodType,
  PathSchema extends z.ZodType,
  ResponseSchema extends z.ZodType,
> {
  /** false for public routes (catalog, webhooks, /dev). */
  auth: boolean;
  /** Operators only: anyone else is 403 FORBIDDEN after the token and the body's size, before the body is parsed. */
  operator?: boolean;
  /** Money-moving POSTs: require Idempotency-Key and take a rate-limit token. */
  idempotent?: boolean;
  /** Takes a write token even on a GET (every authenticated route is limited; this picks the class). */
  rateLimited?: boolean;
  /** Tokens a request takes (default 1): more for reads that query every creator shard. */
  rateLimitCost?: number;
  body?: BodySchema;
  query?: QuerySchema;
  path?: PathSchema;
  /**
   * A body authenticated by a signature over its raw bytes (webhooks): the handler reads it raw
   * and checks the named header itself. Published so the document declares both.
   */
  signedBody?: { header: string };
  /**
   * The success answer. `handle` must answer a body of this schema's type, so a missing or
   * mistyped field fails `tsc`; it is never parsed per request (the local gateway checks it in tests).
   */
  response: RouteResponse<ResponseSchema>;
  handle: (
    request: HttpRequest<z.infer<BodySchema>, z.infer<QuerySchema>, z.infer<PathSchema>>,
  ) => Promise<HttpAnswer<z.input<ResponseSchema>>>;
}

/**
 * Every authenticated route takes from the caller's limit: money routes and every
 * other POST/PUT as a write, GETs as a read, which has a higher limit of its own.
 */
function requestClassOf(spec: { rateLimited?: boolean; idempotent?: boolean }, event: HttpEvent): RequestClass {
  if (spec.rateLimited || spec.idempotent) return 'write';
  return event.requestContext?.http?.method === 'GET' ? 'read' : 'write';
}

export function zodDetails(error: z.ZodError, prefix: string): ErrorDetail[] {
  return error.issues.map((issue) => ({
    path: [prefix, ...issue.path.map(String)].filter((part) => part !== '').join('.'),
    message: issue.message,
  }));
}

function parseWith<T extends z.ZodType>(schema: T | undefined, value: unknown, prefix: string): z.infer<T> {
  if (!schema) return undefined as z.infer<T>;
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw new ValidationError(`The request ${prefix} is not valid.`, { details: zodDetails(parsed.error, prefix) });
  return parsed.data;
}

/** The raw body as text; API Gateway base64-encodes bodies it does not take for text. */
export function rawBody(event: APIGatewayProxyEventV2): string {
  if (event.body === undefined || event.body === null) return '';
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  if (Buffer.byteLength(text, 'utf8') > MAX_BODY_BYTES)
    throw new PayloadTooLargeError('The request body is over 1 MiB.');
  return text;
}

function parseJsonBody(event: APIGatewayProxyEventV2): unknown {
  const text = rawBody(event);
  // docs/API.md: requests without a body accept an empty body, with or without Content-Type.
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ValidationError('The request body is not valid JSON.', {
      details: [{ path: 'body', message: 'invalid JSON' }],
    });
  }
}

function header(event: APIGatewayProxyEventV2, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

/** A canonical fingerprint of what the request asks for: same key + other body = 422. */
export function requestFingerprint(routeKey: string, pathParameters: unknown, body: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify([routeKey, pathParameters ?? null, canonical(body)]))
    .digest('hex');
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => [k, canonical(v)]),
    );
  }
  return value;
}

/**
 * Builds a Lambda handler for one HTTP route: correlation id and structured logs, body size and
 * JSON checks, zod parsing of body, query and path, the caller from verified claims, the
 * Idempotency-Key, the per-user rate limit, and every error mapped in one place. The route's
 * `handle` only calls its use case and shapes the answer.
 */
export function httpRoute<
  BodySchema extends z.ZodType = z.ZodUndefined,
  QuerySchema extends z.ZodType = z.ZodUndefined,
  PathSchema extends z.ZodType = z.ZodUndefined,
  ResponseSchema extends z.ZodType = z.ZodType,
>(spec: RouteSpec<BodySchema, QuerySchema, PathSchema, ResponseSchema>) {
  const core = async (event: HttpEvent, context: Context): Promise<APIGatewayProxyResultV2> => {
    const correlationId = event.requestContext?.requestId ?? context.awsRequestId;
    try {
      const caller = spec.auth
        ? callerFromClaims(event.requestContext.authorizer?.jwt?.claims)
        : (undefined as unknown as Caller);
      // docs/API.md: a body over 1 MiB is refused with 413 on every route, also one that reads no body
      // and one only operators may call: the size is checked before anything else is read.
      rawBody(event);
      // Operators only: after the token and the body's size (docs/API.md, check order), before the
      // body is parsed, so a non-operator learns nothing about what the route accepts.
      if (spec.operator && !isOperator(caller)) {
        // Refused requests still take from the caller's bucket: hammering an operator route is limited too.
        await userRateLimiter().take(caller.userId, requestClassOf(spec, event), spec.rateLimitCost);
        assertOperator(caller);
      }
      const body = parseWith(spec.body, spec.body ? parseJsonBody(event) : undefined, 'body');
      const query = parseWith(spec.query, event.queryStringParameters ?? {}, 'query');
      const path = parseWith(spec.path, event.pathParameters ?? {}, 'path');
      let idempotency = undefined as unknown as { key: string; fingerprint: string };
      if (spec.idempotent) {
        const key = header(event, 'idempotency-key');
        if (key === undefined || key === '')
          throw new IdempotencyKeyRequiredError('This request needs an Idempotency-Key header.');
        if (!IDEMPOTENCY_KEY_PATTERN.test(key)) {
          throw new ValidationError('The Idempotency-Key header is not valid.', {
            details: [{ path: 'headers.idempotency-key', message: 'must be 1-255 printable ASCII characters' }],
          });
        }
        idempotency = { key, fingerprint: requestFingerprint(event.routeKey, path, body) };
      }
      const counting = spec.auth
        ? userRateLimiter().take(caller.userId, requestClassOf(spec, event), spec.rateLimitCost)
        : undefined;
      const answer = await whileCounting(counting, () =>
        spec.handle({ body, query, path, caller, idempotency, correlationId, event }),
      );
      return jsonResponse(answer.status, answer.body, answer.headers);
    } catch (error) {
      return errorResponse(error, correlationId);
    }
  };
  // One invocation per request: its log lines carry this correlation id and route, and no other request's.
  const invocation = (event: HttpEvent, context: Context) =>
    runInvocation(
      context,
      { correlationId: event.requestContext?.requestId ?? context.awsRequestId, route: event.routeKey },
      () => core(event, context),
    );
  // The spec rides along on the handler so the OpenAPI document is generated from the very
  // schemas that parse the requests (shared/http/openapi.ts).
  return Object.assign(middy(invocation), {
    routeSpec: {
      auth: spec.auth,
      operator: spec.operator ?? false,
      idempotent: spec.idempotent ?? false,
      rateLimited: (spec.rateLimited ?? false) || (spec.idempotent ?? false),
      body: spec.body,
      query: spec.query,
      path: spec.path,
      signedBody: spec.signedBody,
      response: spec.response,
    },
  });
}

export interface PublishedRouteSpec {
  auth: boolean;
  /** Operators only (403 FORBIDDEN for anyone else). */
  operator?: boolean;
  idempotent: boolean;
  /** Takes a token from the caller's rate-limit bucket (every idempotent route does). */
  rateLimited?: boolean;
  body?: z.ZodType;
  query?: z.ZodType;
  path?: z.ZodType;
  /** A raw body signed in this header (webhooks). */
  signedBody?: { header: string };
  /** The success status and the schema of its body. */
  response?: RouteResponse;
}
