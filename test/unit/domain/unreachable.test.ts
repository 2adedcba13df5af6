import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import { InvariantViolation } from '../../../shared/domain/errors';
import { unreachable } from '../../../shared/domain/unreachable';
import { errorResponse } from '../../../shared/http/responses';
import type { WriteOp } from '../../../shared/ports/ledger-store';
import { logger } from '../../../shared/logger';

/** What `unreachable` throws, for a value the types said could not exist. */
function thrownBy(value: unknown): unknown {
  try {
    unreachable(value as never, 'kind');
  } catch (error) {
    return error;
  }
  throw new Error('unreachable returned');
}

describe('unreachable: a programming error is ours, never the caller’s', () => {
  beforeEach(() => jest.spyOn(logger, 'error').mockImplementation(() => undefined));
  afterEach(() => jest.restoreAllMocks());

  it('throws an InvariantViolation naming the value', () => {
    const error = thrownBy({ kind: 'delete' });
    expect(error).toBeInstanceOf(InvariantViolation);
    expect((error as Error).message).toBe('unexpected kind: {"kind":"delete"}');
  });

  it('answers 500 INTERNAL with the correlation id, not a 400, and does not leak the value', () => {
    const answer = errorResponse(thrownBy('secret-value'), 'corr-1') as APIGatewayProxyStructuredResultV2;
    expect(answer.statusCode).toBe(500);
    const body = JSON.parse(String(answer.body)) as { error: { code: string; correlationId: string } };
    expect(body.error).toMatchObject({ code: 'INTERNAL', correlationId: 'corr-1' });
    expect(answer.body).not.toContain('secret-value');
    expect(logger.error).toHaveBeenCalledTimes(1);
  });

  it('a forged write op fails the transaction before anything is sent', async () => {
    const send = jest.fn();
    const store = new DynamoLedgerStore({ send }, 'Ledger', { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 });
    const forged = { label: 'forged', request: { kind: 'delete', key: { pk: 'USER#a', sk: 'WALLET' } } };
    await expect(store.transactWrite([forged as unknown as WriteOp])).rejects.toBeInstanceOf(InvariantViolation);
    expect(send).not.toHaveBeenCalled();
  });
});
