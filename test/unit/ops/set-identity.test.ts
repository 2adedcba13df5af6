import { identityAttributes, parseIdentityArguments } from '../../../infra/ops/set-identity';

/** Issue 16: the operator's script refuses bad input before it calls Cognito, and writes the pool's attribute names. */
const POOL = ['--user-pool-id', 'eu-west-1_AbC123', '--user', 'alice@example.com'];

test("birthdate, country and consent become the user pool's attributes", () => {
  const args = parseIdentityArguments([
    ...POOL,
    '--birthdate',
    '1990-04-01',
    '--country',
    'de',
    '--parental-consent',
    'false',
  ]);
  expect(identityAttributes(args)).toEqual([
    { Name: 'birthdate', Value: '1990-04-01' },
    { Name: 'custom:country', Value: 'DE' },
    { Name: 'custom:parental_consent', Value: 'false' },
  ]);
});

test('only what is given is set', () => {
  expect(identityAttributes(parseIdentityArguments([...POOL, '--country', 'US']))).toEqual([
    { Name: 'custom:country', Value: 'US' },
  ]);
});

test.each([
  [['--birthdate', '1990-02-30'], /birthdate/],
  [['--birthdate', '01-04-1990'], /birthdate/],
  [['--birthdate', '2999-01-01'], /birthdate/],
  [['--country', 'DEU'], /country/],
  [['--parental-consent', 'yes'], /parentalConsent/],
  [[], /at least one/],
])('refuses %j', (extra, message) => {
  expect(() => parseIdentityArguments([...POOL, ...extra])).toThrow(message);
});

test('refuses a missing user or a malformed pool id, and unknown flags', () => {
  expect(() => parseIdentityArguments(['--user-pool-id', 'eu-west-1_AbC123', '--country', 'US'])).toThrow(/user/);
  expect(() => parseIdentityArguments(['--user-pool-id', 'not a pool', '--user', 'a', '--country', 'US'])).toThrow(
    /userPoolId/,
  );
  expect(() => parseIdentityArguments([...POOL, '--country', 'US', '--admin', 'true'])).toThrow();
});
