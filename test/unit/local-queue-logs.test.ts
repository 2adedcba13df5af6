import { Logger } from '@aws-lambda-powertools/logger';
import { type LogLine, logThrough } from '../../infra/local/queues';
import { queueUrlEnvVar } from '../../infra/routes';

/**
 * The local event source mapping's log lines reach the logger at their own level. They used to go
 * to `logger.info(msg, line)` with `level` as a field, which Powertools reserves: it dropped the
 * field with a warning and logged every failure of a consumer as INFO.
 */
describe('the local queue poller logs at the line level', () => {
  function capture(): { logger: Logger; printed: Array<Record<string, unknown>> } {
    const printed: Array<Record<string, unknown>> = [];
    const logger = new Logger({ serviceName: 'test', logLevel: 'INFO' });
    // Powertools prints one JSON object per line through its console.
    const print = (...args: unknown[]): void => {
      printed.push(JSON.parse(String(args[0])) as Record<string, unknown>);
    };
    for (const method of ['info', 'warn', 'error', 'log'] as const)
      jest.spyOn((logger as unknown as { console: Console }).console, method).mockImplementation(print);
    return { logger, printed };
  }

  it.each([
    ['info', 'INFO'],
    ['warn', 'WARN'],
    ['error', 'ERROR'],
  ] as const)('a %s line is logged at %s, its fields kept and no level field added', (level, printedLevel) => {
    const { logger, printed } = capture();
    const warnings = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const line: LogLine = { level, msg: 'ReceiveMessage failed; backing off', queue: 'payouts', backoffMs: 200 };
    logThrough(logger)(line);
    expect(printed).toHaveLength(1);
    expect(printed[0]).toMatchObject({
      level: printedLevel,
      message: 'ReceiveMessage failed; backing off',
      queue: 'payouts',
      backoffMs: 200,
    });
    expect(warnings).not.toHaveBeenCalled();
    warnings.mockRestore();
  });
});

describe('one queue-URL variable namer', () => {
  it.each([
    ['payouts', 'PAYOUTS_QUEUE_URL'],
    ['giftEvents', 'GIFT_EVENTS_QUEUE_URL'],
    // The local stack's copy split only after a lower-case letter: `payouts2Retry` became PAYOUTS2RETRY_QUEUE_URL.
    ['payouts2Retry', 'PAYOUTS2_RETRY_QUEUE_URL'],
  ])('%s -> %s', (queue, variable) => {
    expect(queueUrlEnvVar(queue)).toBe(variable);
  });
});
