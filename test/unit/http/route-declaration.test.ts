import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { declaredHttpRoute, HTTP_ROUTES } from '../../../infra/routes';
import { type HttpEvent, type HttpRequest, httpRoute, type RouteDeclaration } from '../../../shared/http/route';

/**
 * The route table is the one place a route's auth, idempotency and rate limit are declared; a
 * handler is built from its route's declaration, and what its request holds follows from it.
 */
const answer = { status: 200, schema: z.object({ seen: z.array(z.string()) }) };
const context = { awsRequestId: 'req-1', functionName: 'test' } as Context;
const publicEvent = (claims?: Record<string, unknown>) =>
  ({
    routeKey: 'GET /v1/gifts',
    headers: {},
    requestContext: { requestId: 'req-1', http: { method: 'GET' }, ...(claims && { authorizer: { jwt: { claims } } }) },
  }) as unknown as HttpEvent;

describe('handlers built from the route table', () => {
  it('a public route: its request holds no caller, even when the event carries claims', async () => {
    const seen: string[][] = [];
    const handler = httpRoute(declaredHttpRoute('CatalogGifts'), {
      response: answer,
      handle: async (request) => {
        seen.push(
          Object.keys(request).filter((key) => (request as unknown as Record<string, unknown>)[key] !== undefined),
        );
        return { status: 200, body: { seen: [] } };
      },
    });
    const result = await handler(publicEvent({ sub: 'someone' }), context);
    expect(result).toMatchObject({ statusCode: 200 });
    expect(seen).toEqual([['correlationId', 'event']]);
    expect(handler.routeSpec).toMatchObject({ route: 'CatalogGifts', auth: false, idempotent: false });
  });

  it('publishes what the table declares, not what the handler says', () => {
    const gifts = declaredHttpRoute('GiftsSend');
    expect(gifts).toMatchObject({ auth: 'jwt', idempotent: true });
    const handler = httpRoute(gifts, {
      response: answer,
      handle: async ({ caller, idempotency }) => ({ status: 200, body: { seen: [caller.userId, idempotency.key] } }),
    });
    expect(handler.routeSpec).toMatchObject({ route: 'GiftsSend', auth: true, idempotent: true, rateLimited: true });
  });

  it('an operator route declared public answers 403 to everyone', async () => {
    const misdeclared: RouteDeclaration = { name: 'Misdeclared', method: 'GET', auth: 'none', operator: true };
    const handler = httpRoute(misdeclared, {
      response: answer,
      handle: async () => ({ status: 200, body: { seen: [] } }),
    });
    const result = await handler(publicEvent(), context);
    expect(result).toMatchObject({ statusCode: 403 });
  });

  it('declares every HTTP route once, by a unique name', () => {
    const names = HTTP_ROUTES.map((route) => route.name);
    expect(names.length).toBeGreaterThan(40);
    expect(new Set(names).size).toBe(names.length);
    for (const name of ['GiftsSend', 'RechargesCreate', 'PayoutsCreate', 'OperatorCasesResolve'] as const)
      expect(HTTP_ROUTES.find((route) => route.name === name)?.idempotent).toBe(true);
  });

  it('the types follow the declaration (checked by tsc, which npm test runs)', () => {
    type PublicRequest = HttpRequest<
      ReturnType<typeof declaredHttpRoute<'CatalogGifts'>>,
      undefined,
      undefined,
      undefined
    >;
    type MoneyRequest = HttpRequest<ReturnType<typeof declaredHttpRoute<'GiftsSend'>>, undefined, undefined, undefined>;
    const readsCaller = (request: MoneyRequest) => [request.caller.userId, request.idempotency.key];
    // @ts-expect-error a public route's handler has no caller to read: this must not compile
    const readsMissingCaller = (request: PublicRequest) => request.caller.userId;
    // @ts-expect-error only idempotent routes get an Idempotency-Key
    const readsMissingKey = (request: PublicRequest) => request.idempotency.key;
    expect([readsCaller, readsMissingCaller, readsMissingKey]).toHaveLength(3);
  });
});
