import { CfnOutput, Duration } from 'aws-cdk-lib';
import { AppSyncAuthorizationType, type ChannelNamespace, EventApi } from 'aws-cdk-lib/aws-appsync';
import { Alarm, ComparisonOperator, Metric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { ROOMS_NAMESPACE } from '../../shared/events/channels';
import type { AppFunction } from './app-function';

/**
 * AppSync caches an authorizer's answer per token. 0: one token subscribes to several rooms, and
 * an answer for one room (or for a stream that has since ended) must never answer for another.
 */
export const EVENT_API_AUTH_CACHE_TTL = Duration.seconds(0);
/** Any 5xx of the publish endpoint is AWS's or ours; either way frames are being lost. */
export const EVENT_API_5XX_ALARM_COUNT = 1;
/**
 * Only the broadcaster publishes over HTTP, so a 4xx there is our own publish refused (IAM,
 * a malformed batch, or throttling past the publish quota): frames are not reaching viewers.
 */
export const EVENT_API_4XX_ALARM_COUNT = 5;
/** Publishes that failed in the broadcaster (EMF EventApiPublishesFailed). */
export const EVENT_API_PUBLISHES_FAILED_ALARM_COUNT = 5;

export interface RoomEventsProps {
  /** The broadcaster: the only principal allowed to publish (IAM). */
  broadcaster: AppFunction;
  /** The Lambda authorizer built from EVENT_API_AUTHORIZER (JWT settings of the HTTP API, ledger read-only). */
  authorizer: AppFunction;
  alarmTopic: ITopic;
  /** The product metrics' namespace (EMF), for the broadcaster's failed publishes. */
  metricsNamespace: string;
}

/**
 * The rooms' broadcast channels (docs/DESIGN.md, "Rooms beyond @connections"): an AppSync Event
 * API whose `rooms` namespace is published to only with IAM, by the broadcaster, and subscribed
 * to only through the Lambda authorizer (a valid token of the HTTP API's identity provider, the
 * channel of a live room). It has no data source and no handler code: nothing in it can write
 * the ledger; the authorizer's role reads the ledger and nothing else.
 */
export class RoomEvents extends Construct {
  readonly api: EventApi;
  readonly rooms: ChannelNamespace;

  constructor(scope: Construct, id: string, props: RoomEventsProps) {
    super(scope, id);
    this.api = new EventApi(this, 'EventApi', {
      apiName: `${scope.node.id}-rooms`,
      authorizationConfig: {
        authProviders: [
          { authorizationType: AppSyncAuthorizationType.IAM },
          {
            authorizationType: AppSyncAuthorizationType.LAMBDA,
            lambdaAuthorizerConfig: { handler: props.authorizer.function, resultsCacheTtl: EVENT_API_AUTH_CACHE_TTL },
          },
        ],
        connectionAuthModeTypes: [AppSyncAuthorizationType.LAMBDA, AppSyncAuthorizationType.IAM],
        defaultPublishAuthModeTypes: [AppSyncAuthorizationType.IAM],
        defaultSubscribeAuthModeTypes: [AppSyncAuthorizationType.LAMBDA],
      },
      // No AppSync request logs: they would hold every viewer's connect and subscribe, and need a
      // role with an AWS managed policy and a retention custom resource. Refusals are logged by
      // the authorizer (its own log group); errors are alarmed on from the API's metrics below.
    });
    this.rooms = this.api.addChannelNamespace(ROOMS_NAMESPACE, {
      authorizationConfig: {
        publishAuthModeTypes: [AppSyncAuthorizationType.IAM],
        subscribeAuthModeTypes: [AppSyncAuthorizationType.LAMBDA],
      },
    });
    this.rooms.grantPublish(props.broadcaster.role);
    props.broadcaster.function.addEnvironment('EVENT_API_HTTP_URL', `https://${this.api.httpDns}/event`);

    this.alarmOnLostFrames(props);
    this.outputEndpoints(scope);
  }

  /** Alarms on frames not reaching viewers: the API's own errors, and the broadcaster's failed publishes. */
  private alarmOnLostFrames(props: RoomEventsProps): void {
    const alarm = (alarmId: string, metric: Metric, threshold: number, description: string) => {
      const created = new Alarm(this, alarmId, {
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      created.addAlarmAction(new SnsAction(props.alarmTopic));
      created.addOkAction(new SnsAction(props.alarmTopic));
    };
    const appSyncMetric = (metricName: string) =>
      new Metric({
        namespace: 'AWS/AppSync',
        metricName,
        dimensionsMap: { EventAPIId: this.api.apiId },
        statistic: 'Sum',
        period: Duration.minutes(5),
      });
    alarm(
      'EventApi5xxAlarm',
      appSyncMetric('5XXError'),
      EVENT_API_5XX_ALARM_COUNT,
      'The rooms Event API answered 5xx: frames may not reach subscribers.',
    );
    alarm(
      'EventApi4xxAlarm',
      appSyncMetric('4XXError'),
      EVENT_API_4XX_ALARM_COUNT,
      'The rooms Event API refused publishes (only the broadcaster publishes): check its IAM grant, batches and the publish quota.',
    );
    alarm(
      'EventApiPublishesFailedAlarm',
      new Metric({
        namespace: props.metricsNamespace,
        metricName: 'EventApiPublishesFailed',
        statistic: 'Sum',
        period: Duration.minutes(5),
      }),
      EVENT_API_PUBLISHES_FAILED_ALARM_COUNT,
      'The broadcaster could not publish frames to room channels; viewers catch up by seq, but live frames are lost.',
    );
  }

  /** The endpoints a deployment prints, for Amplify clients to be configured with. */
  private outputEndpoints(scope: Construct): void {
    new CfnOutput(scope, 'EventApiHttpEndpoint', {
      value: `https://${this.api.httpDns}/event`,
      description: "Amplify's API.Events.endpoint (room channels /rooms/<mapped stream id>)",
    });
    new CfnOutput(scope, 'EventApiRealtimeEndpoint', {
      value: `wss://${this.api.realtimeDns}/event/realtime`,
      description: 'The Event API WebSocket endpoint (subprotocol aws-appsync-event-ws)',
    });
  }
}
