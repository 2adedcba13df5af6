import { CfnOutput, Duration, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { AccessLogFormat, CfnAccount } from 'aws-cdk-lib/aws-apigateway';
import {
  type CfnStage,
  CorsHttpMethod,
  HttpApi,
  HttpMethod,
  HttpStage,
  LogGroupLogDestination,
  WebSocketApi,
  WebSocketStage,
  type HttpRoute as CdkHttpRoute,
  type IHttpRouteAuthorizer,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer, WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration, WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import {
  Alarm,
  ComparisonOperator,
  MathExpression,
  Metric,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Rule, Schedule as EventSchedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { Role } from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { FilterPattern, LogGroup, MetricFilter } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { CONNECTIONS_TABLE, LEDGER_TABLE, TABLES } from '../../shared/adapters/dynamo/schema';
import { AppFunction, LOG_RETENTION, metricsNamespace } from '../constructs/app-function';
import { UNVERIFIED_EVENT_TYPE, type MetricName } from '../../shared/observability/metrics';
import { bindAccess, type BindableResources } from '../constructs/access';
import {
  cloudHttpRoutes,
  QUEUE_CONSUMERS,
  QUEUES,
  SCHEDULES,
  WEBSOCKET_AUTHORIZER,
  WEBSOCKET_ROUTES,
  type Access,
  type QueueConsumer,
  type QueueName,
  type Schedule,
} from '../routes';
import type { StatefulStack } from './stateful-stack';
import { EVENT_API_AUTHORIZER, RoomEvents } from '../constructs/room-events';

/**
 * Stage throttling is the global guard (per-user limits live in the application, DESIGN.md).
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
/** WebSocket messages (gifts, pings, joins); new connections are capped by AWS at 500/s anyway. */
export const WEBSOCKET_STAGE_THROTTLE = { rateLimit: 2_000, burstLimit: 1_000 } as const;
/** API.md: `wss://<ws-endpoint>/<stage>`. */
export const WEBSOCKET_STAGE_NAME = 'v1';
/** The webhook Stripe is told to call (API.md); its URL is a stack output. */
export const STRIPE_WEBHOOK_PATH = '/v1/webhooks/stripe';
/** EventBridge rate expressions cannot go below one minute. */
export const MIN_SCHEDULE_MINUTES = 1;
/** AWS guidance: an SQS queue's visibility timeout at least six times its consumer's timeout. */
export const VISIBILITY_TO_TIMEOUT_RATIO = 6;
/** Lambda's limits on an SQS event source's maximum concurrency. */
export const MAX_CONCURRENCY_RANGE = { min: 2, max: 1_000 } as const;
/** Lambda allows batches over 10 messages from a standard queue only with a batching window. */
export const MAX_BATCH_WITHOUT_WINDOW = 10;

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
 * Age of the oldest message per consumed queue. Payouts: API.md promises `paid` within seconds
 * locally; ten minutes on AWS means the worker or Stripe is stuck. Gift events: viewers expect a
 * gift within seconds, so one minute of backlog is already visible to them.
 */
export const OLDEST_MESSAGE_AGE_ALARM_SECONDS: Record<QueueName, number> = { payouts: 600, giftEvents: 60 };

export interface StatelessStackProps extends StackProps {
  stateful: StatefulStack;
  /** Browser origins allowed to call the HTTP API (CORS); none by default. */
  corsAllowOrigins?: string[];
  /** E-mail address subscribed to the alarm topic. */
  alarmEmail?: string;
  /** Extra configuration for every function (shared/config.ts names), e.g. CREATOR_SHARDS. */
  functionEnvironment?: Record<string, string>;
  /** Where Stripe's onboarding sends creators back (the functions that create account links get them). */
  payoutOnboarding?: { returnUrl: string; refreshUrl: string };
}

interface NamedFunction {
  name: string;
  fn: AppFunction;
}

/**
 * Everything that can be thrown away and recreated: the functions (one per route, consumer and
 * schedule in infra/routes.ts), the HTTP API with its JWT authorizer, the WebSocket API with its
 * Lambda authorizer, the schedules, the alarms and the outputs. Local-only routes never get here.
 */
export class StatelessStack extends Stack {
  readonly httpApi: HttpApi;
  readonly httpStage: HttpStage;
  readonly webSocketApi: WebSocketApi;
  readonly webSocketStage: WebSocketStage;
  readonly functions: NamedFunction[] = [];
  readonly alarmTopic: Topic;
  /** The rooms' broadcast channels (AppSync Events). */
  readonly roomEvents: RoomEvents;

  private readonly resources: BindableResources;
  private readonly functionEnvironment: Record<string, string>;
  private readonly claimNames: Record<string, string>;
  private readonly payoutOnboarding: StatelessStackProps['payoutOnboarding'];

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    const { stateful } = props;
    this.functionEnvironment = props.functionEnvironment ?? {};
    this.claimNames = stateful.identity.claimNames;
    this.payoutOnboarding = props.payoutOnboarding;

    // The WebSocket API and stage come first: functions that post need the stage's callback URL.
    this.webSocketApi = new WebSocketApi(this, 'WebSocketApi', {
      apiName: `${this.stackName}-websocket`,
      description: 'Live viewers: gift events, wallet pushes, sendGift/join/ping actions',
      routeSelectionExpression: '$request.body.action',
    });
    const webSocketAccessLogs = new LogGroup(this, 'WebSocketAccessLogs', {
      retention: LOG_RETENTION,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.webSocketStage = new WebSocketStage(this, 'WebSocketStage', {
      webSocketApi: this.webSocketApi,
      stageName: WEBSOCKET_STAGE_NAME,
      autoDeploy: true,
      throttle: WEBSOCKET_STAGE_THROTTLE,
      accessLogSettings: {
        destination: new LogGroupLogDestination(webSocketAccessLogs),
        format: webSocketAccessLogFormat(),
      },
    });
    if (stateful.apiGatewayCloudWatchRole)
      this.apiGatewayAccountLogging(this.webSocketStage, stateful.apiGatewayCloudWatchRole);

    this.resources = {
      ledger: { table: stateful.ledgerTable(), definition: LEDGER_TABLE },
      connections: { table: stateful.connectionsTable(), definition: CONNECTIONS_TABLE },
      queues: stateful.queues,
      stripeSecret: stateful.stripeSecret,
      webSocketStage: this.webSocketStage,
    };

    // HTTP API: the cloud routes of the route table and nothing else.
    const httpAccessLogs = new LogGroup(this, 'HttpApiAccessLogs', {
      retention: LOG_RETENTION,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.httpApi = new HttpApi(this, 'HttpApi', {
      apiName: `${this.stackName}-http`,
      description: 'Coins, gifts, streams, payouts (API.md)',
      createDefaultStage: false,
      ...(props.corsAllowOrigins?.length && {
        corsPreflight: {
          allowOrigins: props.corsAllowOrigins,
          allowHeaders: ['authorization', 'content-type', 'idempotency-key'],
          allowMethods: [CorsHttpMethod.GET, CorsHttpMethod.POST, CorsHttpMethod.PUT, CorsHttpMethod.DELETE],
          maxAge: Duration.hours(1),
        },
      }),
    });
    this.httpStage = new HttpStage(this, 'HttpStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: HTTP_STAGE_THROTTLE,
      accessLogSettings: { destination: new LogGroupLogDestination(httpAccessLogs), format: httpAccessLogFormat() },
    });
    const jwtAuthorizer = new HttpJwtAuthorizer('JwtAuthorizer', stateful.identity.issuer, {
      jwtAudience: [stateful.identity.audience],
      identitySource: ['$request.header.Authorization'],
    });
    const publicRouteSettings: Record<string, { ThrottlingRateLimit: number; ThrottlingBurstLimit: number }> = {};
    for (const route of cloudHttpRoutes()) {
      const fn = this.addFunction(route.name, {
        handler: route.handler,
        description: `${route.method} ${route.path}`,
        access: route.access,
        environment: route.auth === 'jwt' ? this.claimNames : {},
      });
      const authorizer: IHttpRouteAuthorizer | undefined = route.auth === 'jwt' ? jwtAuthorizer : undefined;
      const [cdkRoute] = this.httpApi.addRoutes({
        path: route.path,
        methods: [HttpMethod[route.method]],
        integration: new HttpLambdaIntegration(`${route.name}Integration`, fn.function),
        ...(authorizer && { authorizer }),
      });
      if (!cdkRoute) throw new Error(`No route created for ${route.method} ${route.path}`);
      this.httpStage.node.addDependency(cdkRoute);
      if (route.auth === 'none') {
        publicRouteSettings[`${route.method} ${route.path}`] = {
          ThrottlingRateLimit: PUBLIC_ROUTE_THROTTLE.rateLimit,
          ThrottlingBurstLimit: PUBLIC_ROUTE_THROTTLE.burstLimit,
        };
        acknowledgePublicRoute(cdkRoute, `${route.method} ${route.path}`);
      }
    }
    (this.httpStage.node.defaultChild as CfnStage).routeSettings = publicRouteSettings;

    // WebSocket API: the $connect authorizer, then every route of the table.
    const authorizerFunction = this.addFunction(WEBSOCKET_AUTHORIZER.name, {
      handler: WEBSOCKET_AUTHORIZER.handler,
      description: 'WebSocket $connect authorizer: verifies the token from the query string',
      access: {},
      environment: {
        JWT_ISSUER: stateful.identity.issuer,
        JWT_AUDIENCE: stateful.identity.audience,
        JWT_JWKS_URL: stateful.identity.jwksUrl,
        ...this.claimNames,
      },
    });
    const webSocketAuthorizer = new WebSocketLambdaAuthorizer('WebSocketAuthorizer', authorizerFunction.function, {
      identitySource: [...WEBSOCKET_AUTHORIZER.identitySource],
    });
    for (const route of WEBSOCKET_ROUTES) {
      const fn = this.addFunction(route.name, {
        handler: route.handler,
        description: `WebSocket ${route.routeKey}`,
        access: route.access,
      });
      const cdkRoute = this.webSocketApi.addRoute(route.routeKey, {
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

    for (const consumer of QUEUE_CONSUMERS) this.addConsumer(consumer);
    for (const schedule of SCHEDULES) this.addSchedule(schedule);

    this.alarmTopic = new Topic(this, 'AlarmTopic', { displayName: `${this.stackName} alarms`, enforceSSL: true });
    if (props.alarmEmail) this.alarmTopic.addSubscription(new EmailSubscription(props.alarmEmail));
    this.roomEvents = this.addRoomEvents(stateful);
    this.addAlarms(stateful, httpAccessLogs, webSocketAccessLogs);

    const httpUrl = this.httpStage.url;
    new CfnOutput(this, 'HttpApiUrl', {
      value: httpUrl,
      description: 'Base URL of the HTTP API (API.md paths go after it)',
    });
    new CfnOutput(this, 'WebSocketUrl', {
      value: this.webSocketStage.url,
      description: 'WebSocket URL: connect with ?token=<JWT>&streamId=<id>',
    });
    if (cloudHttpRoutes().some((route) => route.path === STRIPE_WEBHOOK_PATH)) {
      new CfnOutput(this, 'StripeWebhookUrl', {
        value: `${httpUrl}${STRIPE_WEBHOOK_PATH.slice(1)}`,
        description: 'Register this endpoint at Stripe (README, Deploying)',
      });
    }
    new CfnOutput(this, 'JwtIssuer', {
      value: stateful.identity.issuer,
      description: 'The OIDC issuer both APIs trust',
    });
    if (stateful.identity.userPool && stateful.identity.userPoolClient) {
      new CfnOutput(this, 'UserPoolId', { value: stateful.identity.userPool.userPoolId });
      new CfnOutput(this, 'UserPoolClientId', { value: stateful.identity.userPoolClient.userPoolClientId });
    }
  }

  /** The Event API: its authorizer verifies tokens as the WebSocket authorizer does, and reads the ledger only. */
  private addRoomEvents(stateful: StatefulStack): RoomEvents {
    const broadcaster = this.functions.find(
      (named) =>
        QUEUE_CONSUMERS.find((consumer) => consumer.name === named.name)?.handler ===
        'functions/queue/broadcast-gifts.ts',
    );
    if (!broadcaster) throw new Error('The route table has no broadcast-gifts consumer to publish room frames');
    const authorizer = this.addFunction(EVENT_API_AUTHORIZER.name, {
      handler: EVENT_API_AUTHORIZER.handler,
      description: 'Event API authorizer: verifies the token, allows only a live room channel',
      access: { ledger: 'read' },
      environment: {
        JWT_ISSUER: stateful.identity.issuer,
        JWT_AUDIENCE: stateful.identity.audience,
        JWT_JWKS_URL: stateful.identity.jwksUrl,
        ...this.claimNames,
      },
    });
    return new RoomEvents(this, 'RoomEvents', {
      broadcaster: broadcaster.fn,
      authorizer,
      alarmTopic: this.alarmTopic,
      metricsNamespace: metricsNamespace(this.stackName),
    });
  }

  private addFunction(
    name: string,
    spec: {
      handler: string;
      description: string;
      access: Access;
      timeoutSeconds?: number;
      environment?: Record<string, string>;
    },
  ): AppFunction {
    if (this.functions.some((existing) => existing.name === name))
      throw new Error(`Two functions are named ${name} in the route table`);
    const fn = new AppFunction(this, name, {
      handler: spec.handler,
      description: spec.description,
      ...(spec.timeoutSeconds !== undefined && { timeoutSeconds: spec.timeoutSeconds }),
      environment: {
        ...this.functionEnvironment,
        // Only the functions that may call Stripe can create an account link.
        ...(this.payoutOnboarding &&
          spec.access.stripe && {
            PAYOUT_ONBOARDING_RETURN_URL: this.payoutOnboarding.returnUrl,
            PAYOUT_ONBOARDING_REFRESH_URL: this.payoutOnboarding.refreshUrl,
          }),
        ...spec.environment,
      },
    });
    bindAccess(fn, spec.access, this.resources);
    this.functions.push({ name, fn });
    return fn;
  }

  private addConsumer(consumer: QueueConsumer): void {
    const definition = QUEUES.find((queue) => queue.logicalName === consumer.queue);
    const queue = this.resources.queues.get(consumer.queue);
    if (!definition || !queue) throw new Error(`Consumer ${consumer.name}: queue '${consumer.queue}' is not in QUEUES`);
    if (definition.visibilityTimeoutSeconds < VISIBILITY_TO_TIMEOUT_RATIO * consumer.timeoutSeconds) {
      throw new Error(
        `Consumer ${consumer.name}: queue ${consumer.queue} visibility timeout ${definition.visibilityTimeoutSeconds}s is below ${VISIBILITY_TO_TIMEOUT_RATIO}x the function timeout (${consumer.timeoutSeconds}s)`,
      );
    }
    if (consumer.maxConcurrency < MAX_CONCURRENCY_RANGE.min || consumer.maxConcurrency > MAX_CONCURRENCY_RANGE.max) {
      throw new Error(
        `Consumer ${consumer.name}: maxConcurrency must be ${MAX_CONCURRENCY_RANGE.min}-${MAX_CONCURRENCY_RANGE.max} (Lambda's limits)`,
      );
    }
    const fn = this.addFunction(consumer.name, {
      handler: consumer.handler,
      description: `Consumer of the ${consumer.queue} queue`,
      access: consumer.access,
      timeoutSeconds: consumer.timeoutSeconds,
    });
    // FIFO event sources take no batching window: a group's messages already arrive in order.
    const windowSeconds = definition.fifo ? 0 : Math.ceil(consumer.maximumBatchingWindowMs / 1000);
    if (!definition.fifo && consumer.batchSize > MAX_BATCH_WITHOUT_WINDOW && windowSeconds === 0) {
      throw new Error(`Consumer ${consumer.name}: a batch over ${MAX_BATCH_WITHOUT_WINDOW} needs a batching window`);
    }
    fn.function.addEventSource(
      new SqsEventSource(queue, {
        batchSize: consumer.batchSize,
        reportBatchItemFailures: true,
        maxConcurrency: consumer.maxConcurrency,
        ...(windowSeconds > 0 && { maxBatchingWindow: Duration.seconds(windowSeconds) }),
      }),
    );
  }

  private addSchedule(schedule: Schedule): void {
    const fn = this.addFunction(schedule.name, {
      handler: schedule.handler,
      description: `Runs every ${schedule.everySeconds} s (at least every minute on AWS)`,
      access: schedule.access,
      timeoutSeconds: schedule.timeoutSeconds,
    });
    const minutes = Math.max(MIN_SCHEDULE_MINUTES, Math.ceil(schedule.everySeconds / 60));
    new Rule(this, `${schedule.name}Schedule`, {
      description: `${schedule.name}: every ${minutes} min`,
      schedule: EventSchedule.rate(Duration.minutes(minutes)),
      // A sweep that could not start is superseded by the next one; retrying later adds nothing.
      targets: [new LambdaFunction(fn.function, { retryAttempts: 2, maxEventAge: Duration.minutes(minutes) })],
    });
  }

  /**
   * Sets API Gateway's account-level CloudWatch role, which WebSocket access logs require. The
   * role comes from the stateful stack, deployed before this one, so it has propagated in IAM by
   * the time the account names it. Account-wide: it is the one logging role of every API Gateway
   * API in this account and region, and it is retained when the stack goes.
   */
  private apiGatewayAccountLogging(stage: WebSocketStage, role: Role): void {
    const account = new CfnAccount(this, 'ApiGatewayAccount', { cloudWatchRoleArn: role.roleArn });
    account.applyRemovalPolicy(RemovalPolicy.RETAIN);
    stage.node.addDependency(account);
  }

  private addAlarms(stateful: StatefulStack, httpAccessLogs: LogGroup, webSocketAccessLogs: LogGroup): void {
    const alarm = (id: string, metric: IMetric, threshold: number, description: string) => {
      const created = new Alarm(this, id, {
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      created.addAlarmAction(new SnsAction(this.alarmTopic));
      created.addOkAction(new SnsAction(this.alarmTopic));
      return created;
    };

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

    alarm(
      'HttpApi5xxAlarm',
      this.httpApi.metricServerError({ period: ALARM_PERIOD, statistic: 'Sum' }),
      API_5XX_ALARM_COUNT,
      'HTTP API answers 5xx.',
    );
    alarm(
      'HttpApiThrottleAlarm',
      this.throttledRequestsMetric('HttpApi', httpAccessLogs),
      API_THROTTLE_ALARM_COUNT,
      'HTTP API stage or route throttling (429) is refusing requests.',
    );
    const webSocketMetric = (metricName: string) =>
      new Metric({
        namespace: 'AWS/ApiGateway',
        metricName,
        dimensionsMap: { ApiId: this.webSocketApi.apiId, Stage: WEBSOCKET_STAGE_NAME },
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
      this.throttledRequestsMetric('WebSocket', webSocketAccessLogs),
      API_THROTTLE_ALARM_COUNT,
      'WebSocket stage throttling (429) is refusing messages.',
    );

    for (const { name, fn } of this.functions) {
      alarm(
        `${name}ErrorsAlarm`,
        fn.function.metricErrors({ period: ALARM_PERIOD, statistic: 'Sum' }),
        LAMBDA_ERROR_ALARM_COUNT,
        `${name} crashed or timed out.`,
      );
    }

    this.addProductAlarms(alarm);

    for (const definition of TABLES) {
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
  }

  /**
   * Alarms on the product's own metrics (EMF, shared/observability/metrics.ts), in this
   * deployment's namespace. A missing datapoint means nothing happened: not breaching.
   */
  private addProductAlarms(
    alarm: (id: string, metric: IMetric, threshold: number, description: string) => Alarm,
  ): void {
    const productMetric = (metricName: MetricName, dimensionsMap: Record<string, string> = {}) =>
      new Metric({
        namespace: metricsNamespace(this.stackName),
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
  private throttledRequestsMetric(api: string, accessLogs: LogGroup): IMetric {
    const filter = new MetricFilter(this, `${api}ThrottledRequests`, {
      logGroup: accessLogs,
      // The access log format writes the status as a JSON string.
      filterPattern: FilterPattern.stringValue('$.status', '=', '429'),
      metricNamespace: `LiveGifting/${this.stackName}`,
      metricName: `${api}ThrottledRequests`,
      metricValue: '1',
      defaultValue: 0,
    });
    return filter.metric({ period: ALARM_PERIOD, statistic: 'Sum' });
  }
}

function acknowledgePublicRoute(route: CdkHttpRoute, routeKey: string): void {
  Validations.of(route).acknowledge({
    id: 'AwsSolutions-APIG4',
    reason: `${routeKey} is public by contract (API.md): the catalog and health need no account, and Stripe's webhook authenticates with its Stripe-Signature header, verified by the handler over the raw body.`,
  });
}

/** One JSON object per request; ids and status only (no tokens, bodies or query strings). */
function httpAccessLogFormat(): AccessLogFormat {
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

function webSocketAccessLogFormat(): AccessLogFormat {
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

function pascal(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
