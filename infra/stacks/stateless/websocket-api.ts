import { RemovalPolicy, type Stack, Validations } from 'aws-cdk-lib';
import { CfnAccount } from 'aws-cdk-lib/aws-apigateway';
import { LogGroupLogDestination, WebSocketApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { Role } from 'aws-cdk-lib/aws-iam';
import type { LogGroup } from 'aws-cdk-lib/aws-logs';
import { WEBSOCKET_AUTHORIZER, WEBSOCKET_ROUTES } from '../../routes';
import type { StatefulStack } from '../stateful-stack';
import { accessLogGroup, webSocketAccessLogFormat } from './access-logs';
import type { AddFunction } from './functions';

/** WebSocket messages (gifts, pings, joins); new connections are capped by AWS at 500/s anyway. */
export const WEBSOCKET_STAGE_THROTTLE = { rateLimit: 2_000, burstLimit: 1_000 } as const;
/** docs/API.md: `wss://<ws-endpoint>/<stage>`. */
export const WEBSOCKET_STAGE_NAME = 'v1';

export interface WebSocketApiParts {
  webSocketApi: WebSocketApi;
  webSocketStage: WebSocketStage;
  accessLogs: LogGroup;
}

/** The WebSocket API and its stage, in the stack's own scope (the logical ids stay as they were). */
export function createWebSocketApi(stack: Stack, stateful: StatefulStack): WebSocketApiParts {
  const webSocketApi = new WebSocketApi(stack, 'WebSocketApi', {
    apiName: `${stack.stackName}-websocket`,
    description: 'Live viewers: gift events, wallet pushes, sendGift/join/ping actions',
    routeSelectionExpression: '$request.body.action',
  });
  const accessLogs = accessLogGroup(stack, 'WebSocketAccessLogs');
  const webSocketStage = new WebSocketStage(stack, 'WebSocketStage', {
    webSocketApi,
    stageName: WEBSOCKET_STAGE_NAME,
    autoDeploy: true,
    throttle: WEBSOCKET_STAGE_THROTTLE,
    accessLogSettings: {
      destination: new LogGroupLogDestination(accessLogs),
      format: webSocketAccessLogFormat(),
    },
  });
  if (stateful.apiGatewayCloudWatchRole)
    apiGatewayAccountLogging(stack, webSocketStage, stateful.apiGatewayCloudWatchRole);
  return { webSocketApi, webSocketStage, accessLogs };
}

/**
 * Sets API Gateway's account-level CloudWatch role, which WebSocket access logs require. The
 * role comes from the stateful stack, deployed before this one, so it has propagated in IAM by
 * the time the account names it. Account-wide: it is the one logging role of every API Gateway
 * API in this account and region, and it is retained when the stack goes.
 */
function apiGatewayAccountLogging(stack: Stack, stage: WebSocketStage, role: Role): void {
  const account = new CfnAccount(stack, 'ApiGatewayAccount', { cloudWatchRoleArn: role.roleArn });
  account.applyRemovalPolicy(RemovalPolicy.RETAIN);
  stage.node.addDependency(account);
}

/** The $connect authorizer, then every route of the table. */
export function addWebSocketRoutes(
  webSocketApi: WebSocketApi,
  stateful: StatefulStack,
  claimNames: Record<string, string>,
  addFunction: AddFunction,
): void {
  const authorizerFunction = addFunction(WEBSOCKET_AUTHORIZER.name, {
    handler: WEBSOCKET_AUTHORIZER.handler,
    description: 'WebSocket $connect authorizer: verifies the token from the query string',
    access: WEBSOCKET_AUTHORIZER.access,
    environment: {
      JWT_ISSUER: stateful.identity.issuer,
      JWT_AUDIENCE: stateful.identity.audience,
      JWT_JWKS_URL: stateful.identity.jwksUrl,
      ...claimNames,
    },
  });
  const webSocketAuthorizer = new WebSocketLambdaAuthorizer('WebSocketAuthorizer', authorizerFunction.function, {
    identitySource: [...WEBSOCKET_AUTHORIZER.identitySource],
  });
  for (const route of WEBSOCKET_ROUTES) {
    const fn = addFunction(route.name, {
      handler: route.handler,
      description: `WebSocket ${route.routeKey}`,
      access: route.access,
    });
    const cdkRoute = webSocketApi.addRoute(route.routeKey, {
      integration: new WebSocketLambdaIntegration(`${route.name}Integration`, fn.function),
      returnResponse: route.returnResponse,
      ...(route.routeKey === '$connect' && { authorizer: webSocketAuthorizer }),
    });
    if (route.routeKey !== '$connect') {
      Validations.of(cdkRoute).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          'API Gateway authorizes a WebSocket connection once, on $connect (Lambda REQUEST authorizer); later routes of that connection carry its authorizer context and cannot have an authorizer of their own.',
      });
    }
  }
}
