import { Annotations, CfnOutput, Duration, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import {
  AttributeType,
  BillingMode,
  ContributorInsightsMode,
  ProjectionType,
  Table,
  TableEncryption,
  type ITable,
  type WarmThroughput,
} from 'aws-cdk-lib/aws-dynamodb';
import { ManagedPolicy, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { DeduplicationScope, FifoThroughputLimit, Queue, QueueEncryption, type IQueue } from 'aws-cdk-lib/aws-sqs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import {
  AccountRecovery,
  BooleanAttribute,
  ClientAttributes,
  FeaturePlan,
  Mfa,
  StringAttribute,
  UserPool,
  type UserPoolClient,
  UserPoolEmail,
} from 'aws-cdk-lib/aws-cognito';
import type { Construct } from 'constructs';
import { TABLES, type TableDefinition, type KeyAttribute } from '../../shared/adapters/dynamo/schema';
import { QUEUES, type QueueDefinition, type QueueName } from '../routes';

/**
 * SQS keeps a message at most 14 days; a dead letter is kept that long so an operator has two
 * weeks to look at it and redrive it.
 */
export const DEAD_LETTER_RETENTION = Duration.days(14);
/** AWS guidance for SQS event sources: at least 5 receives before a message is dead-lettered. */
export const MIN_MAX_RECEIVE_COUNT = 5;
/** Cognito ID tokens: an hour, so a revoked or changed age attribute takes effect within one. */
export const ID_TOKEN_VALIDITY = Duration.hours(1);
/** Custom attribute names in Cognito (the token carries them as `custom:<name>`). */
export const COGNITO_CUSTOM_ATTRIBUTES = { country: 'country', parentalConsent: 'parental_consent' } as const;
/** The claim names the functions read when the stack's own user pool is the issuer. */
export const COGNITO_CLAIM_NAMES = {
  CLAIM_BIRTHDATE: 'birthdate',
  CLAIM_COUNTRY: `custom:${COGNITO_CUSTOM_ATTRIBUTES.country}`,
  CLAIM_PARENTAL_CONSENT: `custom:${COGNITO_CUSTOM_ATTRIBUTES.parentalConsent}`,
} as const;

/** The JWT issuer the APIs trust: an existing OIDC provider (context) or the stack's user pool. */
export interface IdentityConfig {
  issuer: string;
  audience: string;
  jwksUrl: string;
  /** Claim names that differ from docs/API.md's defaults (Cognito's custom attributes). */
  claimNames: Record<string, string>;
  userPool?: UserPool;
  userPoolClient?: UserPoolClient;
}

/**
 * Contributor insights log only the keys that were throttled: that is what the throttle alarms
 * need, and logging every accessed key of a busy ledger costs per event.
 */
export const CONTRIBUTOR_INSIGHTS_MODE = ContributorInsightsMode.THROTTLED_KEYS;
/** A new on-demand table is already warm for 12,000 reads and 4,000 writes a second (AWS); less means nothing. */
export const MIN_WARM_THROUGHPUT = { readUnitsPerSecond: 12_000, writeUnitsPerSecond: 4_000 } as const;

/** Cognito sends its e-mails (codes, password resets) through this SES identity. */
export interface SesEmailConfig {
  fromEmail: string;
  fromName?: string;
  /** The verified domain, when fromEmail is an address of a verified domain rather than a verified address. */
  verifiedDomain?: string;
  /** The SES region, when it is not the stack's. */
  region?: string;
}

export const SES_MISSING_WARNING =
  "No SES identity (context sesFromEmail): the user pool sends sign-up and password-reset e-mails with Cognito's built-in e-mail, " +
  'which AWS documents as below production delivery volume. Verify an identity in SES and deploy with -c sesFromEmail=no-reply@your-domain (README, Deploying).';

export interface StatefulStackProps extends StackProps {
  /** An existing OIDC issuer; without it the stack creates a Cognito user pool. */
  oidc?: { issuer: string; audience: string; jwksUrl?: string };
  /** The SES identity the user pool sends with; without it synth warns (Cognito's built-in e-mail). */
  ses?: SesEmailConfig;
  /** The ledger's warm throughput for a launch (context ledgerWarmReadUnits / ledgerWarmWriteUnits). */
  ledgerWarmThroughput?: WarmThroughput;
  /**
   * Create API Gateway's account-level CloudWatch role here, a deployment before the stateless
   * stack sets it on the account (AWS::ApiGateway::Account), so IAM has propagated the new role by
   * then. Default true; false when the account's role is managed elsewhere.
   */
  apiGatewayCloudWatchRole?: boolean;
}

/**
 * Everything that holds state: the DynamoDB tables from the one schema, the queues from the route
 * table with their dead-letter queues, the Stripe secret, and the user pool when the stack is its
 * own identity provider. Tables that hold money are retained and protected from deletion.
 * No physical names: CloudFormation generates them and the functions get them as environment.
 */
export class StatefulStack extends Stack {
  readonly tables = new Map<TableDefinition['envVar'], Table>();
  readonly queues = new Map<QueueName, Queue>();
  readonly deadLetterQueues = new Map<QueueName, Queue>();
  readonly stripeSecret: Secret;
  readonly identity: IdentityConfig;
  /** API Gateway's account logging role, set on the account by the stateless stack. */
  readonly apiGatewayCloudWatchRole?: Role;

  constructor(scope: Construct, id: string, props: StatefulStackProps = {}) {
    super(scope, id, props);
    for (const definition of TABLES) {
      this.tables.set(
        definition.envVar,
        this.createTable(definition, definition.envVar === 'LEDGER_TABLE' ? props.ledgerWarmThroughput : undefined),
      );
    }
    for (const definition of QUEUES) this.createQueue(definition);

    // Stripe's keys are rotated in Stripe's dashboard and then stored here (README, Deploying);
    // the generated value is a placeholder that the functions refuse (no `whsec_` prefix), so an
    // unset secret fails loudly instead of calling Stripe with a fake key.
    this.stripeSecret = new Secret(this, 'StripeSecret', {
      description:
        'Stripe API secret key and webhook signing secret: JSON {"secretKey":"sk_...","webhookSecret":"whsec_..."}',
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ secretKey: 'unset: see README, Deploying' }),
        generateStringKey: 'webhookSecret',
        excludePunctuation: true,
      },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.stripeSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'Stripe keys cannot be rotated by a Secrets Manager rotation function: they are rolled in the Stripe dashboard and the new values put here (README, Deploying).',
    });

    new CfnOutput(this, 'StripeSecretArn', {
      value: this.stripeSecret.secretArn,
      description: 'Put {"secretKey":"sk_...","webhookSecret":"whsec_..."} here (README, Deploying)',
    });

    this.identity = props.oidc
      ? {
          issuer: props.oidc.issuer,
          audience: props.oidc.audience,
          jwksUrl: props.oidc.jwksUrl ?? `${props.oidc.issuer.replace(/\/$/, '')}/.well-known/jwks.json`,
          claimNames: {},
        }
      : this.createUserPool(props.ses);
    if (props.apiGatewayCloudWatchRole ?? true) this.apiGatewayCloudWatchRole = this.createApiGatewayCloudWatchRole();
  }

  /**
   * API Gateway's account-level logging role (WebSocket access logs need it). Created here so it
   * exists a whole deployment before AWS::ApiGateway::Account names it: setting the account right
   * after creating its role in the same template is a known intermittent failure in a fresh
   * account ("The role ARN does not have required permissions"), while IAM propagates the role.
   */
  private createApiGatewayCloudWatchRole(): Role {
    const role = new Role(this, 'ApiGatewayCloudWatchRole', {
      assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
      managedPolicies: [ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')],
    });
    // Account-wide: other APIs of the account log through it too, so it outlives this stack.
    role.applyRemovalPolicy(RemovalPolicy.RETAIN);
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason:
        "API Gateway's account-level logging role: AWS documents this managed policy for it, and API Gateway creates each API's log streams itself, so the log groups are not known in advance.",
    });
    return role;
  }

  ledgerTable(): ITable {
    return this.requireTable('LEDGER_TABLE');
  }

  connectionsTable(): ITable {
    return this.requireTable('CONNECTIONS_TABLE');
  }

  queue(name: QueueName): IQueue {
    const queue = this.queues.get(name);
    if (!queue) throw new Error(`No queue '${name}' in QUEUES`);
    return queue;
  }

  private requireTable(envVar: TableDefinition['envVar']): Table {
    const table = this.tables.get(envVar);
    if (!table) throw new Error(`No table for ${envVar} in the schema`);
    return table;
  }

  private createTable(definition: TableDefinition, warmThroughput: WarmThroughput | undefined): Table {
    const table = new Table(this, `${definition.logicalName}Table`, {
      partitionKey: attribute(definition.partitionKey),
      ...(definition.sortKey && { sortKey: attribute(definition.sortKey) }),
      // On demand: gift traffic follows live streams, spiky and unpredictable.
      billingMode: BillingMode.PAY_PER_REQUEST,
      encryption: TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: definition.holdsMoney,
      removalPolicy: definition.holdsMoney ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      timeToLiveAttribute: definition.timeToLiveAttribute,
      // Hot keys (a creator's wallet shards, a busy stream) show up here first.
      contributorInsightsSpecification: { enabled: true, mode: CONTRIBUTOR_INSIGHTS_MODE },
      ...(warmThroughput && { warmThroughput }),
    });
    for (const index of definition.globalSecondaryIndexes) {
      table.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: attribute(index.partitionKey),
        ...(index.sortKey && { sortKey: attribute(index.sortKey) }),
        projectionType: index.projection === 'ALL' ? ProjectionType.ALL : ProjectionType.KEYS_ONLY,
        contributorInsightsSpecification: { enabled: true, mode: CONTRIBUTOR_INSIGHTS_MODE },
      });
    }
    return table;
  }

  private createQueue(definition: QueueDefinition): void {
    if (definition.deadLetter.maxReceiveCount < MIN_MAX_RECEIVE_COUNT) {
      throw new Error(
        `Queue ${definition.logicalName}: maxReceiveCount ${definition.deadLetter.maxReceiveCount} is below ${MIN_MAX_RECEIVE_COUNT} (AWS guidance for SQS event sources)`,
      );
    }
    const name = pascal(definition.logicalName);
    const common = {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // A FIFO queue's name must end in .fifo; CDK generates such a name when fifo is set.
      ...(definition.fifo && { fifo: true, contentBasedDeduplication: false }),
    };
    const deadLetterQueue = new Queue(this, `${name}DeadLetterQueue`, {
      ...common,
      retentionPeriod: DEAD_LETTER_RETENTION,
      // Dead letters hold payouts and gift broadcasts still owed: keep them if the stack goes.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const queue = new Queue(this, `${name}Queue`, {
      ...common,
      // High-throughput FIFO: ordering and deduplication per message group (one group per
      // stream), so the queue-wide 300 messages/s of plain FIFO does not cap all streams together.
      ...(definition.fifo && {
        deduplicationScope: DeduplicationScope.MESSAGE_GROUP,
        fifoThroughputLimit: FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
      }),
      visibilityTimeout: Duration.seconds(definition.visibilityTimeoutSeconds),
      deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: definition.deadLetter.maxReceiveCount },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.queues.set(definition.logicalName, queue);
    this.deadLetterQueues.set(definition.logicalName, deadLetterQueue);
  }

  /**
   * The stack's own identity provider. `birthdate` (OIDC standard), `country` and
   * `parental_consent` are attributes app clients may read but never write: the age and region
   * rules depend on them (docs/API.md, Conventions), so only an administrator (or a verification
   * process with IAM access) sets them.
   */
  private createUserPool(ses: SesEmailConfig | undefined): IdentityConfig {
    const userPool = new UserPool(this, 'UserPool', {
      selfSignUpEnabled: true,
      ...(ses && {
        email: UserPoolEmail.withSES({
          fromEmail: ses.fromEmail,
          ...(ses.fromName && { fromName: ses.fromName }),
          ...(ses.verifiedDomain && { sesVerifiedDomain: ses.verifiedDomain }),
          ...(ses.region && { sesRegion: ses.region }),
        }),
      }),
      signInAliases: { email: true },
      autoVerify: { email: true },
      standardAttributes: {
        email: { required: true, mutable: true },
        birthdate: { required: false, mutable: true },
      },
      customAttributes: {
        [COGNITO_CUSTOM_ATTRIBUTES.country]: new StringAttribute({ minLen: 2, maxLen: 2, mutable: true }),
        [COGNITO_CUSTOM_ATTRIBUTES.parentalConsent]: new BooleanAttribute({ mutable: true }),
      },
      passwordPolicy: {
        minLength: 12,
        requireDigits: true,
        requireLowercase: true,
        requireUppercase: true,
        requireSymbols: true,
      },
      mfa: Mfa.OPTIONAL,
      mfaSecondFactor: { otp: true, sms: false },
      accountRecovery: AccountRecovery.EMAIL_ONLY,
      featurePlan: FeaturePlan.ESSENTIALS,
      deletionProtection: true,
      // The pool holds every user's identity and the attributes the money rules rely on.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    if (!ses) Annotations.of(userPool).addWarningV2('live-gifting:no-ses-identity', SES_MISSING_WARNING);
    const readAttributes = new ClientAttributes()
      .withStandardAttributes({ email: true, emailVerified: true, birthdate: true })
      .withCustomAttributes(COGNITO_CUSTOM_ATTRIBUTES.country, COGNITO_CUSTOM_ATTRIBUTES.parentalConsent);
    const writeAttributes = new ClientAttributes().withStandardAttributes({ email: true });
    const userPoolClient = userPool.addClient('AppClient', {
      // A public client (browser, mobile): no secret that could leak from an app bundle.
      generateSecret: false,
      authFlows: { userSrp: true },
      disableOAuth: true,
      preventUserExistenceErrors: true,
      idTokenValidity: ID_TOKEN_VALIDITY,
      accessTokenValidity: ID_TOKEN_VALIDITY,
      readAttributes,
      writeAttributes,
    });
    Validations.of(userPool).acknowledge({
      id: 'AwsSolutions-COG2',
      reason:
        'Viewers of a consumer live-streaming product sign up on phones; TOTP MFA is offered (optional), not forced. Money-moving routes are additionally bounded by age rules, budgets and per-user rate limits.',
    });
    Validations.of(userPool).acknowledge({
      id: 'AwsSolutions-COG8',
      reason:
        'The Plus feature plan (threat protection) is priced per monthly active user; it is an operator decision per deployment. Essentials is the default here.',
    });
    return {
      issuer: userPool.userPoolProviderUrl,
      // Cognito ID tokens carry the app client id as `aud`, and only ID tokens carry the custom attributes.
      audience: userPoolClient.userPoolClientId,
      jwksUrl: `${userPool.userPoolProviderUrl}/.well-known/jwks.json`,
      claimNames: { ...COGNITO_CLAIM_NAMES },
      userPool,
      userPoolClient,
    };
  }
}

function attribute(key: KeyAttribute): { name: string; type: AttributeType } {
  return { name: key.name, type: key.type === 'S' ? AttributeType.STRING : AttributeType.NUMBER };
}

function pascal(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
