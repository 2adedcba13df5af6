import { Duration, type Stack, Validations } from 'aws-cdk-lib';
import {
  type CfnStage,
  CorsHttpMethod,
  HttpApi,
  HttpMethod,
  HttpStage,
  LogGroupLogDestination,
  type HttpRoute as CdkHttpRoute,
  type IHttpRouteAuthorizer,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { LogGroup } from 'aws-cdk-lib/aws-logs';
import { cloudHttpRoutes } from '../../routes';
import type { StatefulStack } from '../stateful-stack';
import { accessLogGroup, httpAccessLogFormat } from './access-logs';
import type { AddFunction } from './functions';

/**
 * Stage throttling is the global guard (per-user limits live in the application, docs/DESIGN.md).
 * An account has 10,000 requests/s and a 5,000 burst per region across all its APIs; one
 * deployment takes a fifth so that a second stage or product in the account keeps headroom.
 */
export const HTTP_STAGE_THROTTLE = { rateLimit: 2_000, burstLimit: 1_000 } as const;
/**
 * Routes without a bearer token (catalog, health, the Stripe webhook) have no per-user limit
 * in the application, so each gets its own ceiling below the stage's: an anonymous flood on one
 * of them cannot use up the budget that signed-in users share. Stripe retries a 429 for days.
 */
export const PUBLIC_ROUTE_THROTTLE = { rateLimit: 200, burstLimit: 400 } as const;

export interface HttpApiParts {
  httpApi: HttpApi;
  httpStage: HttpStage;
  accessLogs: LogGroup;
}

/** The HTTP API and its one stage, in the stack's own scope (the logical ids stay as they were). */
export function createHttpApi(stack: Stack, corsAllowOrigins: string[] | undefined): HttpApiParts {
  const accessLogs = accessLogGroup(stack, 'HttpApiAccessLogs');
  const httpApi = new HttpApi(stack, 'HttpApi', {
    apiName: `${stack.stackName}-http`,
    description: 'Coins, gifts, streams, payouts (API.md)',
    createDefaultStage: false,
    ...(corsAllowOrigins?.length && {
      corsPreflight: {
        allowOrigins: corsAllowOrigins,
        allowHeaders: ['authorization', 'content-type', 'idempotency-key'],
        allowMethods: [CorsHttpMethod.GET, CorsHttpMethod.POST, CorsHttpMethod.PUT, CorsHttpMethod.DELETE],
        maxAge: Duration.hours(1),
      },
    }),
  });
  const httpStage = new HttpStage(stack, 'HttpStage', {
    httpApi,
    stageName: '$default',
    autoDeploy: true,
    throttle: HTTP_STAGE_THROTTLE,
    accessLogSettings: { destination: new LogGroupLogDestination(accessLogs), format: httpAccessLogFormat() },
  });
  return { httpApi, httpStage, accessLogs };
}

/** The cloud routes of the route table and nothing else: a function each, behind the JWT authorizer unless public. */
export function addHttpRoutes(
  parts: HttpApiParts,
  stateful: StatefulStack,
  claimNames: Record<string, string>,
  addFunction: AddFunction,
): void {
  const { httpApi, httpStage } = parts;
  const jwtAuthorizer = new HttpJwtAuthorizer('JwtAuthorizer', stateful.identity.issuer, {
    jwtAudience: [stateful.identity.audience],
    identitySource: ['$request.header.Authorization'],
  });
  const publicRouteSettings: Record<string, { ThrottlingRateLimit: number; ThrottlingBurstLimit: number }> = {};
  for (const route of cloudHttpRoutes()) {
    const fn = addFunction(route.name, {
      handler: route.handler,
      description: `${route.method} ${route.path}`,
      access: route.access,
      environment: route.auth === 'jwt' ? claimNames : {},
    });
    const authorizer: IHttpRouteAuthorizer | undefined = route.auth === 'jwt' ? jwtAuthorizer : undefined;
    const [cdkRoute] = httpApi.addRoutes({
      path: route.path,
      methods: [HttpMethod[route.method]],
      integration: new HttpLambdaIntegration(`${route.name}Integration`, fn.function),
      ...(authorizer && { authorizer }),
    });
    if (!cdkRoute) throw new Error(`No route created for ${route.method} ${route.path}`);
    httpStage.node.addDependency(cdkRoute);
    if (route.auth === 'none') {
      publicRouteSettings[`${route.method} ${route.path}`] = {
        ThrottlingRateLimit: PUBLIC_ROUTE_THROTTLE.rateLimit,
        ThrottlingBurstLimit: PUBLIC_ROUTE_THROTTLE.burstLimit,
      };
      acknowledgePublicRoute(cdkRoute, `${route.method} ${route.path}`);
    }
  }
  (httpStage.node.defaultChild as CfnStage).routeSettings = publicRouteSettings;
}

function acknowledgePublicRoute(route: CdkHttpRoute, routeKey: string): void {
  Validations.of(route).acknowledge({
    id: 'AwsSolutions-APIG4',
    reason: `${routeKey} is public by contract (API.md): the catalog and health need no account, and Stripe's webhook authenticates with its Stripe-Signature header, verified by the handler over the raw body.`,
  });
}
