import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { currentInvocation } from './invocation';

/**
 * X-Ray subsegments for the calls a function makes (DynamoDB, SQS, @connections, Stripe), sent
 * to the X-Ray daemon the way the X-Ray SDK does inside Lambda: one UDP datagram per subsegment,
 * parented to the function's segment (the `Parent` of the invocation's trace header), only for
 * sampled traces. The X-Ray SDK (Powertools Tracer) adds 127 KB to every bundle, which puts the
 * largest over its 1 MB bar; this is the part of it the functions need, and nothing more.
 */
const DAEMON_HEADER = '{"format":"json","version":1}\n';
/** UDP datagrams to the daemon: a document over 64 KB is dropped, so texts are cut well below. */
export const MAX_CAUSE_MESSAGE_CHARS = 256;

export interface SubsegmentFields {
  aws?: Record<string, unknown>;
  http?: { request?: { method?: string; url?: string }; response?: { status?: number } };
}

interface TraceParent {
  traceId: string;
  parentId: string;
}

/** The trace this invocation belongs to, when X-Ray sampled it and a daemon listens. */
function traceParent(): TraceParent | undefined {
  const header = currentInvocation()?.traceHeader;
  if (!header || !process.env.AWS_XRAY_DAEMON_ADDRESS) return undefined;
  const fields = Object.fromEntries(header.split(';').map((part) => part.split('=') as [string, string]));
  if (fields.Sampled !== '1' || !fields.Root || !fields.Parent) return undefined;
  return { traceId: fields.Root, parentId: fields.Parent };
}

/** `AWS_XRAY_DAEMON_ADDRESS` is `host:port`, or `udp:host:port tcp:host:port`. */
function daemonAddress(): { host: string; port: number } | undefined {
  const value = process.env.AWS_XRAY_DAEMON_ADDRESS ?? '';
  const udp = value.split(/\s+/).find((part) => part.startsWith('udp:')) ?? value.split(/\s+/)[0] ?? '';
  const match = /^(?:udp:)?([^:\s]+):(\d+)$/.exec(udp);
  return match?.[1] && match[2] ? { host: match[1], port: Number(match[2]) } : undefined;
}

let socket: Socket | undefined;
function send(document: Record<string, unknown>): void {
  const address = daemonAddress();
  if (!address) return;
  socket ??= createSocket('udp4').unref();
  // Fire and forget: a trace must never fail or slow the call it describes.
  socket.send(`${DAEMON_HEADER}${JSON.stringify(document)}`, address.port, address.host, () => undefined);
}

function outcomeFlags(status: number | undefined, error: unknown): Record<string, unknown> {
  if (error === undefined && (status === undefined || status < 400)) return {};
  const name = error instanceof Error ? error.name : `HTTP ${String(status)}`;
  const message = error instanceof Error ? error.message.slice(0, MAX_CAUSE_MESSAGE_CHARS) : '';
  return {
    ...(status === 429
      ? { throttle: true, error: true }
      : status !== undefined && status < 500
        ? { error: true }
        : { fault: true }),
    cause: { exceptions: [{ id: randomBytes(8).toString('hex'), type: name, message }] },
  };
}

/**
 * Runs `call` as a subsegment named `name`. `describe` adds what is known once it is done (the
 * operation, request id, status); `statusOf` reads the HTTP status from a result or an error.
 */
export async function traced<T>(
  name: string,
  namespace: 'aws' | 'remote',
  call: () => Promise<T>,
  describe: (result: T | undefined, error: unknown) => SubsegmentFields & { status?: number },
): Promise<T> {
  const parent = traceParent();
  if (!parent) return call();
  const startTime = Date.now() / 1000;
  const finish = (result: T | undefined, error: unknown) => {
    const { status, ...fields } = describe(result, error);
    send({
      id: randomBytes(8).toString('hex'),
      name,
      namespace,
      type: 'subsegment',
      trace_id: parent.traceId,
      parent_id: parent.parentId,
      start_time: startTime,
      end_time: Date.now() / 1000,
      ...fields,
      ...outcomeFlags(status, error),
    });
  };
  try {
    const result = await call();
    finish(result, undefined);
    return result;
  } catch (error) {
    finish(undefined, error);
    throw error;
  }
}

interface SdkOutput {
  output?: { $metadata?: { requestId?: string; attempts?: number; httpStatusCode?: number } };
  response?: { statusCode?: number };
}
interface SdkClient {
  config: { region: unknown };
  middlewareStack: {
    add(
      middleware: (
        next: (args: { input: Record<string, unknown> }) => Promise<SdkOutput>,
        context: { clientName?: string; commandName?: string },
      ) => (args: { input: Record<string, unknown> }) => Promise<SdkOutput>,
      options: { step: 'initialize'; name: string },
    ): void;
  };
}

/**
 * Every call of an AWS SDK v3 client becomes a subsegment named after the service (`DynamoDB`,
 * `SQS`, `ApiGatewayManagementApi`), its retries included, with the operation, request id,
 * table or queue. Returns the client, so `instrumentAwsClient(new XClient(...))` reads as one step.
 */
export function instrumentAwsClient<Client>(client: Client): Client {
  const sdk = client as unknown as SdkClient;
  sdk.middlewareStack.add(
    (next, context) => async (args) => {
      if (!traceParent()) return next(args);
      const service = (context.clientName ?? 'AWS').replace(/Client$/, '');
      const operation = (context.commandName ?? '').replace(/Command$/, '');
      // The resolved config holds the region as a (memoized) provider.
      const configured = sdk.config.region;
      const region: unknown =
        typeof configured === 'function' ? await (configured as () => Promise<unknown>)() : configured;
      return traced(
        service,
        'aws',
        () => next(args),
        (result, error) => {
          const metadata =
            result?.output?.$metadata ??
            (error as { $metadata?: { requestId?: string; attempts?: number; httpStatusCode?: number } } | undefined)
              ?.$metadata;
          const tableName = args.input.TableName;
          const queueUrl = args.input.QueueUrl;
          return {
            aws: {
              operation,
              ...(typeof region === 'string' && { region }),
              ...(metadata?.requestId && { request_id: metadata.requestId }),
              ...(metadata?.attempts !== undefined && { retries: metadata.attempts - 1 }),
              ...(typeof tableName === 'string' && { table_name: tableName }),
              ...(typeof queueUrl === 'string' && { queue_url: queueUrl }),
            },
            ...(metadata?.httpStatusCode !== undefined && {
              status: metadata.httpStatusCode,
              http: { response: { status: metadata.httpStatusCode } },
            }),
          };
        },
      );
    },
    { step: 'initialize', name: 'xraySubsegment' },
  );
  return client;
}
