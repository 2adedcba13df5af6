import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { Charset, LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The repository root: handler paths in the route table are relative to it. */
export const PROJECT_ROOT = resolve(__dirname, '..', '..');

/**
 * Safe defaults for every function. HTTP routes answer within API Gateway's 30 s integration
 * limit with room to spare; a handler that needs longer belongs on a queue.
 */
export const DEFAULT_TIMEOUT_SECONDS = 10;
/**
 * 512 MB on arm64: Lambda's CPU share grows with memory, and JWT verification, zod parsing and
 * the DynamoDB client's cold import are CPU-bound; below 512 MB cold starts roughly double.
 */
export const DEFAULT_MEMORY_MB = 512;
/** Operational logs for a month; the ledger, not the logs, is the record of money. */
export const LOG_RETENTION = RetentionDays.ONE_MONTH;
/** The runtime every function runs on (the project targets Node.js 22, see package.json engines). */
export const FUNCTION_RUNTIME = Runtime.NODEJS_22_X;
export const FUNCTION_ARCHITECTURE = Architecture.ARM_64;
/** esbuild's target must match the runtime so syntax is not down-levelled needlessly. */
export const ESBUILD_TARGET = 'node22';
/**
 * Packages' ES module builds first: the AWS SDK and Powertools ship both, and esbuild can drop
 * what a handler never imports only from the ES build. Measured with `npm run bench` (bundles):
 * the DynamoDB handlers shrink by about 200 KB and import about 30% faster than from `main`.
 */
export const ESBUILD_MAIN_FIELDS = ['module', 'main'];
/**
 * Stack traces name the TypeScript file and line, not a column of the minified bundle: Node
 * reads the bundle's source map when an error is printed. Lambda passes NODE_OPTIONS to node.
 */
export const SOURCE_MAPS_NODE_OPTIONS = '--enable-source-maps';
/** The CloudWatch namespace of the product's own metrics (EMF): one per deployment (stack prefix). */
export function metricsNamespace(stackName: string): string {
  return `LiveGifting/${stackName}`;
}

export interface AppFunctionProps {
  /** The handler file, relative to the repository root (the route table's `handler`). */
  handler: string;
  /** What the function is for (shown in the console). */
  description: string;
  timeoutSeconds?: number;
  memorySizeMb?: number;
  environment?: Record<string, string>;
}

/**
 * One Lambda function with the project's defaults: Node.js 22 on arm64, bundled by the local
 * esbuild (never Docker) into one minified CommonJS file with source maps and the AWS SDK inside
 * (the bundled SDK is the version the lockfile pinned and tested, not whatever the runtime ships),
 * its own log group with a retention, active tracing, and its own role that starts with nothing
 * but writing to that log group. Access is added by `bindAccess` (access.ts), never here.
 */
export class AppFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: AppFunctionProps) {
    super(scope, id);
    const entry = join(PROJECT_ROOT, props.handler);
    if (!existsSync(entry)) throw new Error(`${id}: handler file ${props.handler} does not exist`);
    assertLocalEsbuild();

    this.logGroup = new LogGroup(this, 'Logs', {
      retention: LOG_RETENTION,
      // The stateless stack is disposable; money lives in the ledger table, not in logs.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // An own role instead of AWSLambdaBasicExecutionRole: that managed policy lets a function
    // write to any log group in the account; this one may write to its own only.
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `${Stack.of(this).stackName} ${id}`,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      entry,
      handler: 'handler',
      description: props.description,
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
      runtime: FUNCTION_RUNTIME,
      architecture: FUNCTION_ARCHITECTURE,
      memorySize: props.memorySizeMb ?? DEFAULT_MEMORY_MB,
      timeout: Duration.seconds(props.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS),
      role: this.role,
      logGroup: this.logGroup,
      tracing: Tracing.ACTIVE,
      environment: {
        POWERTOOLS_SERVICE_NAME: 'live-gifting',
        LOG_LEVEL: 'INFO',
        ...props.environment,
        // After the extra configuration, so neither can be switched off by it.
        NODE_OPTIONS: SOURCE_MAPS_NODE_OPTIONS,
        POWERTOOLS_METRICS_NAMESPACE: metricsNamespace(Stack.of(this).stackName),
      },
      bundling: {
        forceDockerBundling: false,
        minify: true,
        sourceMap: true,
        // Stack traces need file names and lines, not the sources themselves: smaller bundles.
        sourcesContent: false,
        target: ESBUILD_TARGET,
        mainFields: ESBUILD_MAIN_FIELDS,
        format: OutputFormat.CJS,
        bundleAwsSDK: true,
        externalModules: [],
        charset: Charset.UTF8,
        logLevel: LogLevel.WARNING,
        tsconfig: join(PROJECT_ROOT, 'tsconfig.json'),
      },
    });

    // X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level permissions.
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Active tracing: X-Ray PutTraceSegments and PutTelemetryRecords do not support resource-level permissions (AWS X-Ray IAM reference), so CDK grants them on "*".',
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Node.js 22 is the runtime these bundles are built for (esbuild target node22) and tested on; moving to a newer runtime is a deliberate, tested upgrade, not drift.',
    });
  }
}

let esbuildChecked = false;
/**
 * NodejsFunction silently falls back to Docker when it finds no local esbuild. We never want
 * that (no Docker on CI or laptops): fail with a message that says what to do instead.
 */
function assertLocalEsbuild(): void {
  if (esbuildChecked) return;
  try {
    require.resolve('esbuild', { paths: [PROJECT_ROOT] });
    esbuildChecked = true;
  } catch {
    throw new Error(
      'esbuild is not installed locally: run `npm ci`. Lambda bundling uses the local esbuild and never Docker.',
    );
  }
}
