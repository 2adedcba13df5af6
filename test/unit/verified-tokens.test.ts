import type { JWTPayload } from 'jose';
import { MAX_VERIFIED_TOKENS, VERIFIED_TOKEN_TTL_MS, VerifiedTokens } from '../../infra/local/gateway/verified-tokens';

/** A verifier that counts its calls and answers from a table of tokens (a missing one is refused). */
function countingVerifier(valid: Record<string, JWTPayload>) {
  const calls: string[] = [];
  const verify = async (token: string) => {
    calls.push(token);
    const claims = valid[token];
    if (!claims) throw new Error('refused');
    return claims;
  };
  return { calls, verify };
}

describe('the local JWT authorizer remembers verified tokens', () => {
  const nowMs = 1_800_000_000_000;
  const exp = nowMs / 1000 + 3600;

  it('verifies a token once, then answers the same claims from memory', async () => {
    const { calls, verify } = countingVerifier({ a: { sub: 'u1', exp } });
    const tokens = new VerifiedTokens(verify, () => nowMs);
    expect(await tokens.claims('a')).toEqual({ sub: 'u1', exp });
    expect(await tokens.claims('a')).toEqual({ sub: 'u1', exp });
    expect(calls).toEqual(['a']);
  });

  it('never remembers a refusal', async () => {
    const { calls, verify } = countingVerifier({});
    const tokens = new VerifiedTokens(verify, () => nowMs);
    await expect(tokens.claims('forged')).rejects.toThrow('refused');
    await expect(tokens.claims('forged')).rejects.toThrow('refused');
    expect(calls).toEqual(['forged', 'forged']);
  });

  it('verifies again after the time to live, and refuses once the issuer no longer accepts it', async () => {
    const valid: Record<string, JWTPayload> = { a: { sub: 'u1', exp } };
    const { calls, verify } = countingVerifier(valid);
    let now = nowMs;
    const tokens = new VerifiedTokens(verify, () => now);
    await tokens.claims('a');
    now += VERIFIED_TOKEN_TTL_MS - 1;
    await tokens.claims('a');
    expect(calls).toHaveLength(1);
    delete valid.a; // the key that signed it is gone
    now += 1;
    await expect(tokens.claims('a')).rejects.toThrow('refused');
    expect(calls).toHaveLength(2);
  });

  it('never serves a token past its expiry, even within the time to live', async () => {
    const soon = nowMs / 1000 + 5;
    const { calls, verify } = countingVerifier({ a: { sub: 'u1', exp: soon } });
    let now = nowMs;
    const tokens = new VerifiedTokens(verify, () => now);
    await tokens.claims('a');
    now = soon * 1000;
    await tokens.claims('a');
    expect(calls).toHaveLength(2);
  });

  it('does not remember a token already past its expiry (accepted within the clock tolerance)', async () => {
    const { calls, verify } = countingVerifier({ a: { sub: 'u1', exp: nowMs / 1000 - 10 } });
    const tokens = new VerifiedTokens(verify, () => nowMs);
    await tokens.claims('a');
    await tokens.claims('a');
    expect(calls).toHaveLength(2);
  });

  it('forgets everything at its size limit rather than growing', async () => {
    const valid = Object.fromEntries(
      Array.from({ length: MAX_VERIFIED_TOKENS + 1 }, (_, index) => [`t${index}`, { sub: `u${index}`, exp }]),
    );
    const { calls, verify } = countingVerifier(valid);
    const tokens = new VerifiedTokens(verify, () => nowMs);
    for (let index = 0; index <= MAX_VERIFIED_TOKENS; index += 1) await tokens.claims(`t${index}`);
    await tokens.claims('t0');
    expect(calls).toHaveLength(MAX_VERIFIED_TOKENS + 2);
    await tokens.claims(`t${MAX_VERIFIED_TOKENS}`);
    expect(calls).toHaveLength(MAX_VERIFIED_TOKENS + 2);
  });
});
