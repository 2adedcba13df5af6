import { z } from 'zod';
import { HTTP_ROUTES, type HttpRoute } from '../../infra/routes';
import {
  API_ERRORS,
  buildOpenApiDocument,
  loadRouteSpec,
  type OpenApiDocument,
  type OpenApiOperation,
} from '../../shared/http/openapi';
import { renderDocsPage } from '../../infra/local/web/docs';

const IDEMPOTENCY_REF = '#/components/parameters/IdempotencyKey';

function operation(document: OpenApiDocument, route: Pick<HttpRoute, 'path' | 'method'>): OpenApiOperation | undefined {
  return document.paths[route.path]?.[route.method.toLowerCase() as 'get' | 'post' | 'put' | 'delete'];
}

function declaresIdempotencyKey(op: OpenApiOperation): boolean {
  return op.parameters.some((parameter) => '$ref' in parameter && parameter.$ref === IDEMPOTENCY_REF);
}

describe('the OpenAPI document', () => {
  const document = buildOpenApiDocument(HTTP_ROUTES);

  it('is OpenAPI 3.1 and survives a JSON round trip', () => {
    expect(document.openapi).toBe('3.1.0');
    expect(JSON.parse(JSON.stringify(document))).toEqual(document);
  });

  it.each(HTTP_ROUTES.map((route) => [`${route.method} ${route.path}`, route] as const))(
    'documents %s from its handler',
    (_, route) => {
      const op = operation(document, route);
      expect(op).toBeDefined();
      if (!op) return;
      expect(op.operationId).toBe(route.name);
      const spec = loadRouteSpec(route);
      // The handler was built from this route's own declaration in the table.
      expect(spec?.route).toBe(route.name);
      const auth = spec?.auth ?? route.auth === 'jwt';
      expect(op.security).toEqual(auth ? [{ bearerAuth: [] }] : []);
      expect(declaresIdempotencyKey(op)).toBe(spec?.idempotent === true);
      expect(op['x-local-only']).toBe(route.localOnly ? true : undefined);
      for (const match of route.path.matchAll(/\{([A-Za-z0-9_]+)\}/g)) {
        expect(op.parameters).toContainEqual(expect.objectContaining({ name: match[1], in: 'path', required: true }));
      }
      expect(op.responses['4XX']).toEqual({ $ref: '#/components/responses/Error' });
    },
  );

  it.each(HTTP_ROUTES.map((route) => [`${route.method} ${route.path}`, route] as const))(
    'describes the success body of %s with a schema',
    (_, route) => {
      const op = operation(document, route);
      const successes = Object.entries(op?.responses ?? {}).filter(([status]) => /^2\d\d$/.test(status));
      expect(successes).toHaveLength(1);
      const [status, success] = successes[0] ?? [];
      expect(Number(status)).toBe(loadRouteSpec(route)?.response?.status);
      expect(success).toMatchObject({ content: { 'application/json': { schema: { type: 'object' } } } });
    },
  );

  it('declares the webhook signature header and its raw body', () => {
    const op = operation(document, { method: 'POST', path: '/v1/webhooks/stripe' });
    expect(op?.parameters).toContainEqual(
      expect.objectContaining({ name: 'Stripe-Signature', in: 'header', required: true }),
    );
    expect(op?.requestBody).toMatchObject({
      required: true,
      content: { 'application/json': { schema: { type: 'string', format: 'binary' } } },
    });
    expect(op?.security).toEqual([]);
  });

  it('describes answers as handlers produce them: defaulted fields are required', () => {
    const op = operation(document, { method: 'POST', path: '/v1/operator/offers' });
    const created = op?.responses['201'];
    const schema = created && 'content' in created ? created.content?.['application/json'].schema : undefined;
    // offerRecord defaults discountPercent on input; every answer carries it.
    expect(schema?.required).toEqual(expect.arrayContaining(['offerId', 'discountPercent', 'bonusCoins']));
  });

  it('has no operation that the route table lacks', () => {
    const documented = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual(HTTP_ROUTES.map((route) => `${route.method} ${route.path}`).sort());
  });

  it('declares the header on the money-moving POSTs of the contract', () => {
    // API.md marks these (idem); each is checked once its route is in the table.
    const contractIdempotent = [/^\/v1\/recharges$/, /^\/v1\/streams\/\{[^}]+\}\/gifts$/, /^\/v1\/payouts$/];
    for (const route of HTTP_ROUTES.filter(
      (candidate) => candidate.method === 'POST' && contractIdempotent.some((pattern) => pattern.test(candidate.path)),
    )) {
      const op = operation(document, route);
      expect(op && declaresIdempotencyKey(op)).toBe(true);
    }
  });

  it('declares the Idempotency-Key header as a required header of 1-255 printable characters', () => {
    expect(document.components.parameters.IdempotencyKey).toMatchObject({
      name: 'Idempotency-Key',
      in: 'header',
      required: true,
      schema: { minLength: 1, maxLength: 255 },
    });
  });

  it('shares one error shape with every code of the contract', () => {
    expect(document.components.schemas.ErrorCode?.enum).toEqual(API_ERRORS.map((error) => error.code));
    expect(API_ERRORS.map((error) => error.code)).toEqual(
      expect.arrayContaining([
        'VALIDATION_FAILED',
        'AGE_RESTRICTED',
        'INSUFFICIENT_COINS',
        'BUDGET_EXCEEDED',
        'WALLET_LOCKED',
        'RATE_LIMITED',
        'INTERNAL',
        // Issue 13's refusals of a payment method, an offer and a changed total.
        'PAYMENT_METHOD_UNAVAILABLE',
        'OFFER_UNAVAILABLE',
        'PRICE_CHANGED',
      ]),
    );
    expect(API_ERRORS).toHaveLength(25);
  });

  it('turns a published spec into parameters, the header and a body schema', () => {
    const route: HttpRoute = {
      name: 'GiftsSend',
      method: 'POST',
      path: '/v1/streams/{streamId}/gifts',
      handler: 'unused',
      auth: 'jwt',
      access: {},
    };
    const doc = buildOpenApiDocument([route], () => ({
      route: 'GiftsSend',
      auth: true,
      idempotent: true,
      body: z.object({ giftId: z.string(), quantity: z.number().int().min(1).max(99) }),
      path: z.object({ streamId: z.string().max(128) }),
      query: z.object({ dryRun: z.boolean().optional() }),
      response: { status: 201, schema: z.object({ giftTxId: z.string() }) },
    }));
    const op = operation(doc, route);
    expect(op).toBeDefined();
    if (!op) return;
    expect(declaresIdempotencyKey(op)).toBe(true);
    expect(op.responses['201']).toMatchObject({
      content: {
        'application/json': {
          schema: { type: 'object', properties: { giftTxId: { type: 'string' } }, required: ['giftTxId'] },
        },
      },
    });
    expect(op.responses['200']).toBeUndefined();
    expect(op.parameters).toContainEqual({
      name: 'streamId',
      in: 'path',
      required: true,
      schema: { type: 'string', maxLength: 128 },
    });
    expect(op.parameters).toContainEqual({ name: 'dryRun', in: 'query', required: false, schema: { type: 'boolean' } });
    expect(op.requestBody).toEqual({
      required: true,
      content: {
        'application/json': {
          schema: {
            type: 'object',
            properties: { giftId: { type: 'string' }, quantity: { type: 'integer', minimum: 1, maximum: 99 } },
            required: ['giftId', 'quantity'],
          },
        },
      },
    });
  });

  it('renders a docs page with every operation, escaped', () => {
    const html = renderDocsPage(document);
    for (const route of HTTP_ROUTES) expect(html).toContain(`id="op-${route.name}"`);
    // One folded answer schema per operation, and the webhook's signature header.
    expect(html.split('JSON Schema of the answer')).toHaveLength(HTTP_ROUTES.length + 1);
    expect(html).toContain('<code>Stripe-Signature</code>');
    expect(html).not.toMatch(/<script[^>]+src=/);
  });
});
