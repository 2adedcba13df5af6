import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import type { Context } from 'aws-lambda';

/** The repository root: handler paths in the route table are relative to it. */
export const REPO_ROOT = resolve(__dirname, '..', '..');

export type LambdaHandler = (event: unknown, context: Context) => Promise<unknown>;

const loaded = new Map<string, LambdaHandler>();

/**
 * Loads a handler file the way Lambda would (module scope runs once, at the first
 * invocation: the cold start) and returns its `handler` export.
 */
export function loadHandler(handlerFile: string): LambdaHandler {
  const cached = loaded.get(handlerFile);
  if (cached) return cached;
  // require, not import(): the handler file is named at run time and loaded synchronously, as Lambda does.
  const module: unknown = require(resolve(REPO_ROOT, handlerFile));
  const handler = (module as { handler?: unknown }).handler;
  if (typeof handler !== 'function') throw new Error(`${handlerFile} has no exported 'handler' function`);
  const wrapped: LambdaHandler = async (event, context) => (handler as LambdaHandler)(event, context);
  loaded.set(handlerFile, wrapped);
  return wrapped;
}

/** A Lambda context good enough for our handlers (they read awsRequestId and remaining time). */
export function lambdaContext(functionName: string, timeoutMs = 30_000): Context {
  const deadline = Date.now() + timeoutMs;
  const requestId = randomUUID();
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
