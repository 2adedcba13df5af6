import { isDeepStrictEqual } from 'node:util';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import * as z from 'zod';
import { loadRouteSpec } from '../../../shared/http/openapi';
import type { RouteResponse } from '../../../shared/http/route';
import type { HttpRoute } from '../../routes';

/** Each handler's published answer, read once: handler modules do not change while the stack runs. */
const published = new Map<string, RouteResponse | undefined>();

function publishedResponse(route: HttpRoute): RouteResponse | undefined {
  if (!published.has(route.handler)) published.set(route.handler, loadRouteSpec(route)?.response);
  return published.get(route.handler);
}

/**
 * Tests only (the gateway's `checkAnswers`): a success answer must be exactly what its handler
 * publishes in the OpenAPI document, its status and every field, and no field more (the document
 * declares no additional properties). Production never pays for this: handlers do not parse their
 * own answers, the type checker holds them to the schema. Returns what is wrong, or undefined.
 */
export function answerMismatch(route: HttpRoute, result: APIGatewayProxyStructuredResultV2): string | undefined {
  const status = result.statusCode ?? 200;
  if (status < 200 || status > 299) return undefined;
  const response = publishedResponse(route);
  if (!response) return `${route.name} publishes no response schema`;
  if (status !== response.status) return `${route.name} answered ${status}, but publishes ${response.status}`;
  let body: unknown;
  try {
    body = JSON.parse(result.body ?? '');
  } catch {
    return `${route.name} answered a body that is not JSON`;
  }
  const parsed = response.schema.safeParse(body);
  if (!parsed.success) return `${route.name}: ${z.prettifyError(parsed.error)}`;
  // Parsing strips fields the schema does not name: any difference is a field the document hides.
  if (!isDeepStrictEqual(parsed.data, body)) return `${route.name} answered fields its schema does not publish`;
  return undefined;
}
