/** The page's API client: bearer token, idempotency keys, rate-limit retries, errors as ApiError. */
import type * as z from 'zod/mini';
import type { CallOptions } from '../kit';
import { ApiError } from './words';
import { MAX_RATE_LIMIT_RETRIES, MAX_RETRY_AFTER_MS } from './limits';
import { errorBodySchema } from './answers';
import { showError } from './notices';
import { signOut } from './sign-in';
import { sleep } from './format';
import { state } from './state';

export async function api<S extends z.ZodMiniType>(
  method: string,
  path: string,
  schema: S,
  options: CallOptions = {},
): Promise<z.infer<S>> {
  const headers: Record<string, string> = {};
  if (state.session) headers.authorization = `Bearer ${state.session.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
  for (let attempt = 0; ; attempt += 1) {
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers,
        ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
      });
    } catch {
      throw new ApiError('NETWORK', 'network error', 0);
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (response.ok) {
      const parsed = schema.safeParse(json);
      if (!parsed.success)
        throw new ApiError('UNEXPECTED_RESPONSE', `unexpected answer from ${method} ${path}`, response.status);
      return parsed.data;
    }
    const body = errorBodySchema.safeParse(json);
    const retryAfter = Number(response.headers.get('retry-after'));
    const error = body.success
      ? new ApiError(
          body.data.error.code,
          body.data.error.message,
          response.status,
          body.data.error.details ?? [],
          body.data.error.correlationId,
          Number.isFinite(retryAfter) ? retryAfter : undefined,
        )
      : new ApiError(
          response.status >= 500 ? 'INTERNAL' : 'UNEXPECTED_RESPONSE',
          `HTTP ${response.status}`,
          response.status,
        );
    // A rate-limited read, or a write carrying its idempotency key, is safe to send again.
    const retriable = method === 'GET' || options.idempotencyKey !== undefined;
    if (error.code === 'RATE_LIMITED' && retriable && attempt < MAX_RATE_LIMIT_RETRIES) {
      await sleep(Math.min(MAX_RETRY_AFTER_MS, Math.max(1, error.retryAfterSeconds ?? 1) * 1000));
      continue;
    }
    if (error.code === 'UNAUTHORIZED' && state.session) {
      signOut();
      showError(error);
    }
    throw error;
  }
}
