import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import type { Context } from 'aws-lambda';
import { configGeneration, withEnvironment } from '../../shared/config';
import { type Access, grantedVariables, isGrantVariable } from '../routes';

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

/**
 * The environment a function with this access gets: the process's, less the grant-carrying
 * variables (tables, queues, the Stripe secret, the @connections endpoint) its access does not
 * name, as bindAccess leaves them out of its Lambda's environment on AWS. Rebuilt after the local
 * stack changes the process's environment (forgetConfig).
 */
const environments = new WeakMap<Access, { generation: number; environment: NodeJS.ProcessEnv }>();
export function functionEnvironment(access: Access): NodeJS.ProcessEnv {
  const cached = environments.get(access);
  if (cached?.generation === configGeneration()) return cached.environment;
  const granted = new Set(grantedVariables(access));
  const environment = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !isGrantVariable(name) || granted.has(name)),
  );
  environments.set(access, { generation: configGeneration(), environment });
  return environment;
}

/**
 * A handler as the function of one route: it runs (and everything it starts runs) with only the
 * environment its access grants, so a missing grant fails under `npm start`, not first on AWS.
 */
export function loadFunction(handlerFile: string, access: Access): LambdaHandler {
  const handler = loadHandler(handlerFile);
  return (event, context) => withEnvironment(functionEnvironment(access), () => handler(event, context));
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
