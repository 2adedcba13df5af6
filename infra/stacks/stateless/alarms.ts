import { Duration, type Stack } from 'aws-cdk-lib';
import type { HttpApi, WebSocketApi } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  Alarm,
  ComparisonOperator,
  MathExpression,
  Metric,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { FilterPattern, type LogGroup, MetricFilter } from 'aws-cdk-lib/aws-logs';
import type { Topic } from 'aws-cdk-lib/aws-sns';
import { TABLES, type TableDefinition } from '../../../shared/adapters/dynamo/schema';
import { UNVERIFIED_EVENT_TYPE, type MetricName } from '../../../shared/observability/metrics';
import { type AppFunction, metricsNamespace } from '../../constructs/app-function';
import { QUEUE_CONSUMERS, type QueueName } from '../../routes';
import type { StatefulStack } from '../stateful-stack';
import { WEBSOCKET_STAGE_NAME } from './websocket-api';

/** Alarm thresholds: each is "someone should look", not "the system is down". */
export const ALARM_PERIOD = Duration.minutes(5);
/** Any dead letter is money or a broadcast that did not happen: one is enough. */
export const DEAD_LETTER_ALARM_MESSAGES = 1;
/** A handler maps every expected error to 4xx; a few 5xx in five minutes is a bug or an outage. */
export const API_5XX_ALARM_COUNT = 5;
/** Throttled requests mean the global guard is hit: clients are already being refused. */
export const API_THROTTLE_ALARM_COUNT = 10;
/** Lambda errors are crashes and timeouts, never expected refusals. */
export const LAMBDA_ERROR_ALARM_COUNT = 1;
/** On-demand tables throttle only on hot keys; contributor insights names the key. */
export const DYNAMODB_THROTTLE_ALARM_EVENTS = 10;
/** Every failed payout is a creator not paid: one is enough. */
export const PAYOUTS_FAILED_ALARM_COUNT = 1;
/** A failed broadcast is retried; several in five minutes mean viewers are missing gifts. */
export const BROADCASTS_FAILED_ALARM_COUNT = 3;
/** Posts still throttled after their retries: frames lost for viewers. */
export const CONNECTION_POSTS_THROTTLED_ALARM_COUNT = 10;
/**
 * Signature failures in five minutes that are a spike rather than a stray scanner: a rotated
 * webhook secret fails every event Stripe sends, and Stripe retries each for days.
 */
export const WEBHOOK_SIGNATURE_FAILURES_ALARM_COUNT = 10;
/** One event from the other mode is already a misrouted endpoint: its payments are credited nowhere. */
export const WEBHOOK_LIVEMODE_MISMATCH_ALARM_COUNT = 1;
/**
 * Age of the oldest message per consumed queue. Payouts: docs/API.md promises `paid` within seconds
 * locally; ten minutes on AWS means the worker or Stripe is stuck. Gift events: viewers expect a
 * gift within seconds, so one minute of backlog is already visible to them.
 */
export const OLDEST_MESSAGE_AGE_ALARM_SECONDS: Record<QueueName, number> = { payouts: 600, giftEvents: 60 };

/** What the alarms watch. They are built in the stack's own scope, so their logical ids stay as they were. */
export interface AlarmTargets {
  stateful: StatefulStack;
  topic: Topic;
  httpApi: HttpApi;
  httpAccessLogs: LogGroup;
  webSocketApi: WebSocketApi;
  webSocketAccessLogs: LogGroup;
  functions: ReadonlyArray<{ name: string; fn: AppFunction }>;
}

type AddAlarm = (id: string, metric: IMetric, threshold: number, description: string) => Alarm;

/** Every alarm notifies the topic when it fires and when it clears. */
function alarmMaker(stack: Stack, topic: Topic): AddAlarm {
  return (id, metric, threshold, description) => {
    const created = new Alarm(stack, id, {
      metric,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    });
    created.addAlarmAction(new SnsAction(topic));
    created.addOkAction(new SnsAction(topic));
    return created;
  };
}

export function addAlarms(stack: Stack, targets: AlarmTargets): void {
  const alarm = alarmMaker(stack, targets.topic);
  addQueueAlarms(alarm, targets.stateful);
  addApiAlarms(stack, alarm, targets);
  for (const { name, fn } of targets.functions) {
    alarm(
      `${name}ErrorsAlarm`,
      fn.function.metricErrors({ period: ALARM_PERIOD, statistic: 'Sum' }),
      LAMBDA_ERROR_ALARM_COUNT,
      `${name} crashed or timed out.`,
    );
  }
  addProductAlarms(stack, alarm);
  for (const definition of TABLES) addTableAlarm(alarm, targets.stateful, definition);
}

function addQueueAlarms(alarm: AddAlarm, stateful: StatefulStack): void {
  for (const [name, deadLetterQueue] of stateful.deadLetterQueues) {
    alarm(
      `${pascal(name)}DeadLetterAlarm`,
      deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
      DEAD_LETTER_ALARM_MESSAGES,
      `The ${name} dead-letter queue is not empty: inspect and redrive (README, Operating).`,
    );
  }
  for (const consumer of QUEUE_CONSUMERS) {
    alarm(
      `${consumer.name}QueueAgeAlarm`,
      stateful
        .queue(consumer.queue)
        .metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: 'Maximum' }),
      OLDEST_MESSAGE_AGE_ALARM_SECONDS[consumer.queue],
      `${consumer.name}: the oldest message on ${consumer.queue} is older than ${OLDEST_MESSAGE_AGE_ALARM_SECONDS[consumer.queue]} s.`,
    );
  }
}

function addApiAlarms(stack: Stack, alarm: AddAlarm, targets: AlarmTargets): void {
  alarm(
    'HttpApi5xxAlarm',
    targets.httpApi.metricServerError({ period: ALARM_PERIOD, statistic: 'Sum' }),
    API_5XX_ALARM_COUNT,
    'HTTP API answers 5xx.',
  );
  alarm(
    'HttpApiThrottleAlarm',
    throttledRequestsMetric(stack, 'HttpApi', targets.httpAccessLogs),
    API_THROTTLE_ALARM_COUNT,
    'HTTP API stage or route throttling (429) is refusing requests.',
  );
  const webSocketMetric = (metricName: string) =>
    new Metric({
      namespace: 'AWS/ApiGateway',
      metricName,
      dimensionsMap: { ApiId: targets.webSocketApi.apiId, Stage: WEBSOCKET_STAGE_NAME },
      period: ALARM_PERIOD,
      statistic: 'Sum',
    });
  alarm(
    'WebSocket5xxAlarm',
    new MathExpression({
      expression: 'executionErrors + integrationErrors',
      usingMetrics: {
        executionErrors: webSocketMetric('ExecutionError'),
        integrationErrors: webSocketMetric('IntegrationError'),
      },
      period: ALARM_PERIOD,
      label: 'WebSocket server-side errors',
    }),
    API_5XX_ALARM_COUNT,
    'WebSocket API execution or integration errors (the 5xx of a WebSocket API).',
  );
  alarm(
    'WebSocketThrottleAlarm',
    throttledRequestsMetric(stack, 'WebSocket', targets.webSocketAccessLogs),
    API_THROTTLE_ALARM_COUNT,
    'WebSocket stage throttling (429) is refusing messages.',
  );
}

/** Read and write throttle events of a table and each of its indexes, summed. */
function addTableAlarm(alarm: AddAlarm, stateful: StatefulStack, definition: TableDefinition): void {
  const table = definition.envVar === 'LEDGER_TABLE' ? stateful.ledgerTable() : stateful.connectionsTable();
  const usingMetrics: Record<string, IMetric> = {};
  const scopes: Array<Record<string, string>> = [
    { TableName: table.tableName },
    ...definition.globalSecondaryIndexes.map((index) => ({
      TableName: table.tableName,
      GlobalSecondaryIndexName: index.indexName,
    })),
  ];
  scopes.forEach((dimensionsMap, scopeIndex) => {
    for (const metricName of ['ReadThrottleEvents', 'WriteThrottleEvents']) {
      usingMetrics[`${metricName === 'ReadThrottleEvents' ? 'read' : 'write'}${scopeIndex}`] = new Metric({
        namespace: 'AWS/DynamoDB',
        metricName,
        dimensionsMap,
        period: ALARM_PERIOD,
        statistic: 'Sum',
      });
    }
  });
  alarm(
    `${definition.logicalName}TableThrottleAlarm`,
    new MathExpression({
      expression: Object.keys(usingMetrics).join(' + '),
      usingMetrics,
      period: ALARM_PERIOD,
      label: `${definition.logicalName} throttle events`,
    }),
    DYNAMODB_THROTTLE_ALARM_EVENTS,
    `DynamoDB throttles ${definition.logicalName} (table or index): a hot key; see its contributor insights.`,
  );
}

/**
 * Alarms on the product's own metrics (EMF, shared/observability/metrics.ts), in this
 * deployment's namespace. A missing datapoint means nothing happened: not breaching.
 */
function addProductAlarms(stack: Stack, alarm: AddAlarm): void {
  const productMetric = (metricName: MetricName, dimensionsMap: Record<string, string> = {}) =>
    new Metric({
      namespace: metricsNamespace(stack.stackName),
      metricName,
      dimensionsMap,
      period: ALARM_PERIOD,
      statistic: 'Sum',
    });
  alarm(
    'PayoutsFailedAlarm',
    productMetric('PayoutsFailed'),
    PAYOUTS_FAILED_ALARM_COUNT,
    'A payout failed at Stripe: the diamonds went back to the creator; look at the payout and the Connect account.',
  );
  alarm(
    'BroadcastsFailedAlarm',
    productMetric('BroadcastsFailed'),
    BROADCASTS_FAILED_ALARM_COUNT,
    'Gift broadcasts failed: viewers are not seeing gifts live (the nudges are retried, then dead-lettered).',
  );
  alarm(
    'ConnectionPostsThrottledAlarm',
    productMetric('ConnectionPostsThrottled'),
    CONNECTION_POSTS_THROTTLED_ALARM_COUNT,
    "@connections posts are throttled after retries: fan-out is over the account's @connections rate; viewers miss frames.",
  );
  alarm(
    'WebhookSignatureFailuresAlarm',
    productMetric('WebhookEvents', { type: UNVERIFIED_EVENT_TYPE, outcome: 'signature_failed' }),
    WEBHOOK_SIGNATURE_FAILURES_ALARM_COUNT,
    'A spike of Stripe webhook signature failures: a rotated signing secret not yet in the Stripe secret, or forged requests. Paid coins are not credited meanwhile.',
  );
  alarm(
    'WebhookLivemodeMismatchAlarm',
    productMetric('WebhookLivemodeMismatches'),
    WEBHOOK_LIVEMODE_MISMATCH_ALARM_COUNT,
    "Stripe events from the other mode reach this deployment (a live endpoint pointed at a test stack, or the reverse): they are acknowledged and applied to nothing, so that mode's payments are not credited here. Fix the endpoint's URL or the stack's key.",
  );
}

/** Neither API publishes a throttle metric of its own; their access logs record every 429. */
function throttledRequestsMetric(stack: Stack, api: string, accessLogs: LogGroup): IMetric {
  const filter = new MetricFilter(stack, `${api}ThrottledRequests`, {
    logGroup: accessLogs,
    // The access log format writes the status as a JSON string.
    filterPattern: FilterPattern.stringValue('$.status', '=', '429'),
    metricNamespace: `LiveGifting/${stack.stackName}`,
    metricName: `${api}ThrottledRequests`,
    metricValue: '1',
    defaultValue: 0,
  });
  return filter.metric({ period: ALARM_PERIOD, statistic: 'Sum' });
}

function pascal(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
