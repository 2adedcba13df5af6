import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type { HttpApi, HttpStage, WebSocketApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { Rule, Schedule as EventSchedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { CONNECTIONS_TABLE, LEDGER_TABLE } from '../../shared/adapters/dynamo/schema';
import { AppFunction, metricsNamespace } from '../constructs/app-function';
import { RoomEvents } from '../constructs/room-events';
import { bindAccess, type BindableResources } from '../constructs/access';
import {
  cloudHttpRoutes,
  QUEUE_CONSUMERS,
  QUEUES,
  SCHEDULES,
  type QueueConsumer,
  type Schedule,
  STRIPE_WEBHOOK_PATH,
  EVENT_API_AUTHORIZER,
} from '../routes';
import type { StatefulStack } from './stateful-stack';
import { addAlarms } from './stateless/alarms';
import type { FunctionSpec } from './stateless/functions';
import { addHttpRoutes, createHttpApi } from './stateless/http-api';
import { addWebSocketRoutes, createWebSocketApi } from './stateless/websocket-api';

// The parts of the stack live in ./stateless (HTTP API, WebSocket API, access logs, alarms); their
// limits are exported from here too, where the tests and the README look for them.
export {
  ALARM_PERIOD,
  API_5XX_ALARM_COUNT,
  API_THROTTLE_ALARM_COUNT,
  BROADCASTS_FAILED_ALARM_COUNT,
  CONNECTION_POSTS_THROTTLED_ALARM_COUNT,
  DEAD_LETTER_ALARM_MESSAGES,
  DYNAMODB_THROTTLE_ALARM_EVENTS,
  LAMBDA_ERROR_ALARM_COUNT,
  OLDEST_MESSAGE_AGE_ALARM_SECONDS,
  PAYOUTS_FAILED_ALARM_COUNT,
  WEBHOOK_LIVEMODE_MISMATCH_ALARM_COUNT,
  WEBHOOK_SIGNATURE_FAILURES_ALARM_COUNT,
} from './stateless/alarms';
export { HTTP_STAGE_THROTTLE, PUBLIC_ROUTE_THROTTLE } from './stateless/http-api';
export { WEBSOCKET_STAGE_NAME, WEBSOCKET_STAGE_THROTTLE } from './stateless/websocket-api';

/** The webhook Stripe is told to call (routes.ts); its URL is a stack output. */
export { STRIPE_WEBHOOK_PATH };
/** EventBridge rate expressions cannot go below one minute. */
export const MIN_SCHEDULE_MINUTES = 1;
/** AWS guidance: an SQS queue's visibility timeout at least six times its consumer's timeout. */
export const VISIBILITY_TO_TIMEOUT_RATIO = 6;
/** Lambda's limits on an SQS event source's maximum concurrency. */
export const MAX_CONCURRENCY_RANGE = { min: 2, max: 1_000 } as const;
/** Lambda allows batches over 10 messages from a standard queue only with a batching window. */
export const MAX_BATCH_WITHOUT_WINDOW = 10;

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
    const addFunction = (name: string, spec: FunctionSpec) => this.addFunction(name, spec);

    // The WebSocket API and stage come first: functions that post need the stage's callback URL.
    const webSocket = createWebSocketApi(this, stateful);
    this.webSocketApi = webSocket.webSocketApi;
    this.webSocketStage = webSocket.webSocketStage;
    this.resources = {
      ledger: { table: stateful.ledgerTable(), definition: LEDGER_TABLE },
      connections: { table: stateful.connectionsTable(), definition: CONNECTIONS_TABLE },
      queues: stateful.queues,
      stripeSecret: stateful.stripeSecret,
      webSocketStage: this.webSocketStage,
    };

    const http = createHttpApi(this, props.corsAllowOrigins);
    this.httpApi = http.httpApi;
    this.httpStage = http.httpStage;
    addHttpRoutes(http, stateful, this.claimNames, addFunction);
    addWebSocketRoutes(this.webSocketApi, stateful, this.claimNames, addFunction);
    for (const consumer of QUEUE_CONSUMERS) this.addConsumer(consumer);
    for (const schedule of SCHEDULES) this.addSchedule(schedule);

    this.alarmTopic = new Topic(this, 'AlarmTopic', { displayName: `${this.stackName} alarms`, enforceSSL: true });
    if (props.alarmEmail) this.alarmTopic.addSubscription(new EmailSubscription(props.alarmEmail));
    this.roomEvents = this.addRoomEvents(stateful);
    addAlarms(this, {
      stateful,
      topic: this.alarmTopic,
      httpApi: this.httpApi,
      httpAccessLogs: http.accessLogs,
      webSocketApi: this.webSocketApi,
      webSocketAccessLogs: webSocket.accessLogs,
      functions: this.functions,
    });
    this.addOutputs(stateful);
  }

  private addOutputs(stateful: StatefulStack): void {
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
      access: EVENT_API_AUTHORIZER.access,
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

  private addFunction(name: string, spec: FunctionSpec): AppFunction {
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
}
