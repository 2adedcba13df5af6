import type { LocalStack } from '../../infra/local/stack';
import { apiClient, startTestStack, type ApiClient } from '../support/local-stack';

/**
 * Issue 13, part 1, over real HTTP: the local issuer signs `groups` into `cognito:groups`, the
 * local gateway hands that array to the handler as API Gateway does ("[operators]"), and the
 * operator routes answer 403 to everyone else, before reading their input.
 */
let stack: LocalStack;
let api: ApiClient;

beforeAll(async () => {
  stack = await startTestStack();
  api = apiClient(stack.httpUrl);
});
afterAll(async () => {
  await stack.stop();
});

async function token(sub: string, groups?: string[]): Promise<string> {
  const response = await api.request('POST', '/dev/tokens', {
    body: { sub, birthdate: '1990-01-01', country: 'US', ...(groups && { groups }) },
  });
  expect(response.status).toBe(200);
  return String(response.body.token);
}

test('an operator reads the audit trail; a viewer, or a member of another group, gets 403', async () => {
  const operator = await token('op-1', ['support', 'operators']);
  const ok = await api.request('GET', '/v1/operator/audit?limit=5', { token: operator });
  expect(ok.status).toBe(200);
  expect(Array.isArray(ok.body.items)).toBe(true);

  for (const other of [await token('viewer-1'), await token('support-1', ['support'])]) {
    const refused = await api.request('GET', '/v1/operator/audit', { token: other });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('FORBIDDEN');
    // Refused before its input is read: a bad query is still 403, not 400.
    const badQuery = await api.request('GET', '/v1/operator/audit?limit=0', { token: other });
    expect(badQuery.status).toBe(403);
  }
  const anonymous = await api.request('GET', '/v1/operator/audit');
  expect(anonymous.status).toBe(401);
});

test('POST /dev/tokens refuses group names that could not round-trip through the authorizer', async () => {
  const refused = await api.request('POST', '/dev/tokens', { body: { sub: 'x', groups: ['a b'] } });
  expect(refused.status).toBe(400);
  expect(refused.body.error.details[0].path).toMatch(/^body\.groups/);
});
