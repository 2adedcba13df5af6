import { functionEnvironment } from '../../infra/local/lambda-runtime';
import type { Access } from '../../infra/routes';
import { ledgerStore } from '../../shared/adapters/clients';
import { giftEventPublisher } from '../../shared/adapters/gift-events';
import { ConfigError, forgetConfig, withEnvironment } from '../../shared/config';

/**
 * Under `npm start` every handler shares one process; the local runner hands each only the
 * environment its route's access grants, so a missing grant fails locally as it would on AWS.
 */
const GRANTS = {
  LEDGER_TABLE: 'local-Ledger',
  CONNECTIONS_TABLE: 'local-Connections',
  GIFT_EVENTS_QUEUE_URL: 'http://sqs.local/000000000000/giftEvents.fifo',
  PAYOUTS_QUEUE_URL: 'http://sqs.local/000000000000/payouts',
  STRIPE_SECRET_KEY: 'sk_test_local',
  STRIPE_WEBHOOK_SECRET: 'whsec_local',
  WS_MANAGEMENT_ENDPOINT: 'http://127.0.0.1:1/local',
};
const saved = { ...process.env };

beforeEach(() => {
  Object.assign(process.env, GRANTS, { JWT_ISSUER: 'local-issuer' });
  forgetConfig();
});
afterEach(() => {
  for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
  Object.assign(process.env, saved);
  forgetConfig();
});

const grantsIn = (environment: NodeJS.ProcessEnv) =>
  Object.keys(GRANTS)
    .filter((name) => name in environment)
    .sort();

describe('the local runner: each function gets the environment its access grants', () => {
  it('keeps plain configuration and only the grant variables the access names', () => {
    const reader: Access = { ledger: 'read' };
    expect(grantsIn(functionEnvironment(reader))).toEqual(['CONNECTIONS_TABLE', 'LEDGER_TABLE']);
    expect(functionEnvironment(reader).JWT_ISSUER).toBe('local-issuer');
    expect(grantsIn(functionEnvironment({}))).toEqual([]);
    expect(grantsIn(functionEnvironment({ sendsTo: ['giftEvents'] }))).toEqual(['GIFT_EVENTS_QUEUE_URL']);
    expect(grantsIn(functionEnvironment({ stripe: true }))).toEqual(['STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET']);
    // Posting implies the connections table (it deletes gone connections), and so both table names.
    expect(grantsIn(functionEnvironment({ postsToConnections: true }))).toEqual([
      'CONNECTIONS_TABLE',
      'LEDGER_TABLE',
      'WS_MANAGEMENT_ENDPOINT',
    ]);
  });

  it('follows the process environment after the local stack changes it', () => {
    const access: Access = { sendsTo: ['payouts'] };
    expect(functionEnvironment(access).PAYOUTS_QUEUE_URL).toBe(GRANTS.PAYOUTS_QUEUE_URL);
    process.env.PAYOUTS_QUEUE_URL = 'http://sqs.local/000000000000/payouts-2';
    forgetConfig();
    expect(functionEnvironment(access).PAYOUTS_QUEUE_URL).toBe('http://sqs.local/000000000000/payouts-2');
  });

  it('a client another handler built is not lent to a handler without the grant', () => {
    expect(ledgerStore()).toBeDefined();
    expect(() => withEnvironment(functionEnvironment({}), () => ledgerStore())).toThrow(ConfigError);
    expect(() => withEnvironment(functionEnvironment({}), () => ledgerStore())).toThrow(/LEDGER_TABLE/);
    expect(giftEventPublisher()).toBeDefined();
    expect(() => withEnvironment(functionEnvironment({ ledger: 'readWrite' }), () => giftEventPublisher())).toThrow(
      /GIFT_EVENTS_QUEUE_URL/,
    );
    expect(withEnvironment(functionEnvironment({ ledger: 'read' }), () => ledgerStore())).toBe(ledgerStore());
  });

  it('keeps the environment across what the handler awaits', async () => {
    const ledgerAfterAwait = async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      try {
        return ledgerStore() ? 'granted' : 'none';
      } catch (error) {
        return error instanceof ConfigError ? 'refused' : 'other';
      }
    };
    const [without, withLedger] = await Promise.all([
      withEnvironment(functionEnvironment({}), ledgerAfterAwait),
      withEnvironment(functionEnvironment({ ledger: 'read' }), ledgerAfterAwait),
    ]);
    expect([without, withLedger]).toEqual(['refused', 'granted']);
    // The process's own environment is untouched: tests and scripts outside the runner read it.
    expect(process.env.LEDGER_TABLE).toBe(GRANTS.LEDGER_TABLE);
  });
});
