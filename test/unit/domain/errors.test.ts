import * as errors from '../../../shared/domain/errors';
import { API_ERRORS, DomainError, ERROR_TABLE, type ErrorCode } from '../../../shared/domain/errors';
import { errorResponse } from '../../../shared/http/responses';
import { errorMessage } from '../../../shared/ws/route';

/** Every concrete error class the module exports, built with a message. */
const domainErrors: DomainError[] = (Object.values(errors) as unknown[])
  .filter(
    (value): value is new (message: string) => DomainError =>
      typeof value === 'function' && value.prototype instanceof DomainError,
  )
  .map((ErrorClass) => new ErrorClass('refused'));

describe('the error table', () => {
  it('has a row for every error class, with the status the class answers', () => {
    expect(domainErrors.length).toBeGreaterThanOrEqual(24);
    for (const error of domainErrors) {
      expect(Object.keys(ERROR_TABLE)).toContain(error.code);
      expect(error.status).toBe(ERROR_TABLE[error.code].status);
    }
  });

  it('has a class for every code but INTERNAL, and one code per class', () => {
    const classCodes = domainErrors.map((error) => error.code);
    expect(new Set(classCodes).size).toBe(classCodes.length);
    expect([...classCodes, 'INTERNAL'].sort()).toEqual(Object.keys(ERROR_TABLE).sort());
  });

  it('pins the contract statuses', () => {
    const statuses = Object.fromEntries(API_ERRORS.map((row) => [row.code, row.status]));
    expect(statuses).toMatchObject({
      VALIDATION_FAILED: 400,
      PAYLOAD_TOO_LARGE: 413,
      UNAUTHORIZED: 401,
      FORBIDDEN: 403,
      NOT_FOUND: 404,
      INSUFFICIENT_COINS: 409,
      IDEMPOTENCY_KEY_REUSED: 422,
      WALLET_LOCKED: 423,
      RATE_LIMITED: 429,
      INTERNAL: 500,
    } satisfies Partial<Record<ErrorCode, number>>);
    expect(API_ERRORS).toHaveLength(Object.keys(ERROR_TABLE).length);
  });

  it('gives HTTP and WebSocket answers the code and status of the table', () => {
    for (const error of domainErrors) {
      const http = errorResponse(error, 'corr-1');
      expect(typeof http === 'object' && http.statusCode).toBe(ERROR_TABLE[error.code].status);
      const body: unknown = typeof http === 'object' ? JSON.parse(http.body ?? '') : undefined;
      expect(body).toEqual({ error: { code: error.code, message: 'refused' } });
      expect(errorMessage(error, 'r1', 'corr-1')).toEqual({
        type: 'error',
        requestId: 'r1',
        error: { code: error.code, message: 'refused' },
      });
    }
  });

  it('answers anything else as INTERNAL with the table status, the correlation id and no detail', () => {
    const http = errorResponse(new Error('secret table name'), 'corr-2');
    expect(typeof http === 'object' && http.statusCode).toBe(ERROR_TABLE.INTERNAL.status);
    expect(typeof http === 'object' && http.body).not.toContain('secret');
    expect(typeof http === 'object' && JSON.parse(http.body ?? '')).toMatchObject({
      error: { code: 'INTERNAL', correlationId: 'corr-2' },
    });
  });
});
