import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import type * as z from 'zod';
import { createHash } from 'node:crypto';
import {
  ForbiddenError,
  IdempotencyKeyRequiredError,
  PayloadTooLargeError,
  ValidationError,
  type ErrorDetail,
} from '../domain/errors';
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

/**
 * What the route table declares of a route that its handler honours (infra/routes.ts, handed in
 * by the handler: shared/ never imports infra/). Its literal `auth` and `idempotent` decide what
 * the handler's request holds: a public route's handler has no `caller` to read, so reading one
 * does not compile.
 */
export interface RouteDeclaration {
  readonly name: string;
  readonly method: string;
  readonly auth: 'jwt' | 'none';
  readonly operator?: boolean;
  readonly idempotent?: boolean;
  readonly rateLimit?: { readonly write?: boolean; readonly cost?: number };
}

/** The request's parts every route gets. */
interface RequestParts<Body, Query, Path> {
  body: Body;
  query: Query;
  path: Path;
  correlationId: string;
  event: HttpEvent;
}

/** The verified caller, on authenticated routes only. */
type CallerPart<Declared extends RouteDeclaration> = Declared extends { auth: 'jwt' } ? { caller: Caller } : unknown;
/** The Idempotency-Key and the request's fingerprint, on idempotent routes only. */
type IdempotencyPart<Declared extends RouteDeclaration> = Declared extends { idempotent: true }
  ? { idempotency: { key: string; fingerprint: string } }
  : unknown;

export type HttpRequest<Declared extends RouteDeclaration, Body, Query, Path> = RequestParts<Body, Query, Path> &
  CallerPart<Declared> &
  IdempotencyPart<Declared>;

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
  Declared extends RouteDeclaration,
  BodySchema extends z.ZodType,
  QuerySchema extends z.ZodType,
  PathSchema extends z.ZodType,
  ResponseSchema extends z.ZodType,
> {
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
    request: HttpRequest<Declared, z.infer<BodySchema>, z.infer<QuerySchema>, z.infer<PathSchema>>,
  ) => Promise<HttpAnswer<z.input<ResponseSchema>>>;
}

/**
 * Every authenticated route takes from the caller's limit: money routes and every
 * other POST/PUT as a write, GETs as a read, which has a higher limit of its own.
 */
function requestClassOf(declared: RouteDeclaration, event: HttpEvent): RequestClass {
  if (declared.rateLimit?.write || declared.idempotent) return 'write';
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

/** The Idempotency-Key an idempotent route requires, and the fingerprint of what the request asks for. */
function idempotencyOf(event: HttpEvent, path: unknown, body: unknown): { key: string; fingerprint: string } {
  const key = header(event, 'idempotency-key');
  if (key === undefined || key === '')
    throw new IdempotencyKeyRequiredError('This request needs an Idempotency-Key header.');
  if (!IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw new ValidationError('The Idempotency-Key header is not valid.', {
      details: [{ path: 'headers.idempotency-key', message: 'must be 1-255 printable ASCII characters' }],
    });
  }
  return { key, fingerprint: requestFingerprint(event.routeKey, path, body) };
}

/**
 * Builds a Lambda handler for one HTTP route: correlation id and structured logs, body size and
 * JSON checks, zod parsing of body, query and path, the caller from verified claims, the
 * Idempotency-Key, the per-user rate limit, and every error mapped in one place. What the route
 * table declares (auth, operators only, idempotency, rate limit) comes in as `declared`; the
 * route's `handle` only calls its use case and shapes the answer.
 */
export function httpRoute<
  const Declared extends RouteDeclaration,
  BodySchema extends z.ZodType = z.ZodUndefined,
  QuerySchema extends z.ZodType = z.ZodUndefined,
  PathSchema extends z.ZodType = z.ZodUndefined,
  ResponseSchema extends z.ZodType = z.ZodType,
>(declared: Declared, spec: RouteSpec<Declared, BodySchema, QuerySchema, PathSchema, ResponseSchema>) {
  type Request = HttpRequest<Declared, z.infer<BodySchema>, z.infer<QuerySchema>, z.infer<PathSchema>>;
  const authenticated = declared.auth === 'jwt';
  const core = async (event: HttpEvent, context: Context): Promise<APIGatewayProxyResultV2> => {
    const correlationId = event.requestContext?.requestId ?? context.awsRequestId;
    try {
      const caller = authenticated ? callerFromClaims(event.requestContext.authorizer?.jwt?.claims) : undefined;
      // docs/API.md: a body over 1 MiB is refused with 413 on every route, also one that reads no body
      // and one only operators may call: the size is checked before anything else is read.
      rawBody(event);
      // Operators only: after the token and the body's size (docs/API.md, check order), before the
      // body is parsed, so a non-operator learns nothing about what the route accepts.
      if (declared.operator && !(caller && isOperator(caller))) {
        // Fails closed: an operator route declared public answers 403 to everyone.
        if (!caller) throw new ForbiddenError('This needs an operator.');
        // Refused requests still take from the caller's bucket: hammering an operator route is limited too.
        await userRateLimiter().take(caller.userId, requestClassOf(declared, event), declared.rateLimit?.cost);
        assertOperator(caller);
      }
      const body = parseWith(spec.body, spec.body ? parseJsonBody(event) : undefined, 'body');
      const query = parseWith(spec.query, event.queryStringParameters ?? {}, 'query');
      const path = parseWith(spec.path, event.pathParameters ?? {}, 'path');
      const idempotency = declared.idempotent ? idempotencyOf(event, path, body) : undefined;
      const counting = caller
        ? userRateLimiter().take(caller.userId, requestClassOf(declared, event), declared.rateLimit?.cost)
        : undefined;
      // The parts the declaration promises are present: `caller` when auth is jwt, `idempotency` when idempotent.
      const request = { body, query, path, caller, idempotency, correlationId, event } as unknown as Request;
      const answer = await whileCounting(counting, () => spec.handle(request));
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
      route: declared.name,
      auth: authenticated,
      operator: declared.operator ?? false,
      idempotent: declared.idempotent ?? false,
      rateLimited: (declared.rateLimit?.write ?? false) || (declared.idempotent ?? false),
      body: spec.body,
      query: spec.query,
      path: spec.path,
      signedBody: spec.signedBody,
      response: spec.response,
    },
  });
}

export interface PublishedRouteSpec {
  /** The route table's name of the route the handler was built for. */
  route: string;
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
