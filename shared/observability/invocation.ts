import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context } from 'aws-lambda';

/**
 * What belongs to one invocation: the Lambda context (with cold start), the log keys of the
 * request or message being handled, the X-Ray trace header, and work to finish when it ends
 * (metrics are flushed then). It lives in AsyncLocalStorage, not in module state: the local stack
 * runs every function in one process, many invocations at once, and Lambda can run several
 * invocations in one environment too (managed instances), so nothing here is process-wide.
 */
export interface InvocationState {
  readonly lambda: {
    functionName: string;
    functionVersion: string;
    invokedFunctionArn: string;
    memoryLimitInMB: string;
    awsRequestId: string;
    coldStart: boolean;
  };
  /** Keys every log line of this invocation carries (correlationId, route, messageId, ...). */
  readonly keys: Readonly<Record<string, unknown>>;
  /** `Root=...;Parent=...;Sampled=...`, as Lambda hands it to this invocation. */
  readonly traceHeader: string | undefined;
  /** Run once when the invocation ends, whatever its outcome (shared by nested key scopes). */
  readonly finishers: Array<() => void>;
}

const storage = new AsyncLocalStorage<InvocationState>();
/** Functions that have run in this process: the first invocation of each is its cold start. */
const startedFunctions = new Set<string>();

export function currentInvocation(): InvocationState | undefined {
  return storage.getStore();
}

/** The trace header of this invocation: the runtime's per-invocation store first, then the environment. */
function traceHeaderNow(): string | undefined {
  const store = (globalThis as { awslambda?: { InvokeStore?: { getXRayTraceId?: () => string | undefined } } })
    .awslambda?.InvokeStore;
  return store?.getXRayTraceId?.() ?? process.env._X_AMZN_TRACE_ID;
}

/**
 * Runs one invocation with its own state. Called inside another invocation (a handler calling a
 * handler), it only adds the keys: the outer invocation stays the one that logs and flushes.
 */
export async function runInvocation<T>(
  context: Context | undefined,
  keys: Record<string, unknown>,
  fn: () => Promise<T>,
): Promise<T> {
  if (storage.getStore()) return withLogKeys(keys, fn);
  const functionName = context?.functionName ?? process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'unknown';
  const coldStart = !startedFunctions.has(functionName);
  startedFunctions.add(functionName);
  const state: InvocationState = {
    lambda: {
      functionName,
      functionVersion: context?.functionVersion ?? '$LATEST',
      invokedFunctionArn: context?.invokedFunctionArn ?? '',
      memoryLimitInMB: context?.memoryLimitInMB ?? '',
      awsRequestId: context?.awsRequestId ?? '',
      coldStart,
    },
    keys: { ...keys },
    traceHeader: traceHeaderNow(),
    finishers: [],
  };
  return storage.run(state, async () => {
    try {
      return await fn();
    } finally {
      for (const finish of state.finishers.splice(0)) finish();
    }
  });
}

/**
 * Runs `fn` with more log keys (a queue message's id, a payout id); they end with it. Parallel
 * work of one invocation (streams of a batch) each gets its own keys. Outside an invocation
 * (a unit test calling a use case) it just runs `fn`.
 */
export function withLogKeys<T>(keys: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
  const state = storage.getStore();
  if (!state) return fn();
  return storage.run({ ...state, keys: { ...state.keys, ...keys } }, fn);
}

/**
 * A Lambda handler that runs as one invocation (log context, metrics flushed at its end). Its
 * lines carry `correlationId`: what `keysOf` finds in the event (API Gateway's request id), else
 * the Lambda request id (schedules, queue batches, whose messages add their own ids).
 */
export function instrumented<Event, Result>(
  handler: (event: Event, context: Context) => Promise<Result>,
  keysOf: (event: Event) => Record<string, unknown> = () => ({}),
): (event: Event, context: Context) => Promise<Result> {
  return (event, context) =>
    runInvocation(context, { correlationId: context?.awsRequestId, ...keysOf(event) }, () => handler(event, context));
}
