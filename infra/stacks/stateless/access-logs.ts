import { RemovalPolicy, type Stack } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { LOG_RETENTION } from '../../constructs/app-function';

/**
 * The APIs' access logs: one JSON object per request, ids and status only (no tokens, bodies or
 * query strings). Built in the stack's own scope, so the resources keep their logical ids.
 */
export function accessLogGroup(stack: Stack, id: 'HttpApiAccessLogs' | 'WebSocketAccessLogs'): LogGroup {
  return new LogGroup(stack, id, { retention: LOG_RETENTION, removalPolicy: RemovalPolicy.DESTROY });
}

export function httpAccessLogFormat(): AccessLogFormat {
  return AccessLogFormat.custom(
    JSON.stringify({
      requestId: '$context.requestId',
      requestTime: '$context.requestTime',
      ip: '$context.identity.sourceIp',
      routeKey: '$context.routeKey',
      status: '$context.status',
      responseLength: '$context.responseLength',
      latencyMs: '$context.responseLatency',
      integrationStatus: '$context.integrationStatus',
      integrationError: '$context.integrationErrorMessage',
      authorizerError: '$context.authorizer.error',
      userId: '$context.authorizer.claims.sub',
    }),
  );
}

export function webSocketAccessLogFormat(): AccessLogFormat {
  return AccessLogFormat.custom(
    JSON.stringify({
      requestId: '$context.requestId',
      requestTime: '$context.requestTime',
      ip: '$context.identity.sourceIp',
      routeKey: '$context.routeKey',
      eventType: '$context.eventType',
      connectionId: '$context.connectionId',
      status: '$context.status',
      integrationError: '$context.integrationErrorMessage',
      authorizerError: '$context.authorizer.error',
      userId: '$context.authorizer.principalId',
    }),
  );
}
