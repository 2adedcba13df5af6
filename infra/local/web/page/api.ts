/** The page's API client: bearer token, idempotency keys, rate-limit retries, errors as ApiError. */
import type * as z from 'zod/mini';
import { type CallOptions, NetworkUnreachable, sendJson } from '../kit';
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
  for (let attempt = 0; ; attempt += 1) {
    let answer: Awaited<ReturnType<typeof sendJson>>;
    try {
      answer = await sendJson(method, path, { ...options, token: state.session?.token });
    } catch (error) {
      if (error instanceof NetworkUnreachable) throw new ApiError('NETWORK', 'network error', 0);
      throw error;
    }
    const { response, json } = answer;
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
