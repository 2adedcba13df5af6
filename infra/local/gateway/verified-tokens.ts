import type { JWTPayload } from 'jose';

/**
 * The local JWT authorizer's memory of tokens it has already verified. On AWS the HTTP API's JWT
 * authorizer checks every request outside our functions; locally that check runs in the same
 * process as the handlers, and a signature verification (about half a millisecond of CPU) per
 * request was a tenth of a gift's own work in the benchmark.
 *
 * A token is remembered only while it is unexpired, and for at most VERIFIED_TOKEN_TTL_MS, so a
 * key the issuer stops publishing is noticed within that time. Refusals are never remembered:
 * a token is either verified again or served from here with the claims it was verified with.
 */
export const VERIFIED_TOKEN_TTL_MS = 60_000;
/** Tokens remembered at once; past it the whole memory is dropped (tokens are re-verified, never wrongly accepted). */
export const MAX_VERIFIED_TOKENS = 10_000;

export class VerifiedTokens {
  private readonly tokens = new Map<string, { claims: JWTPayload; until: number }>();

  constructor(
    private readonly verify: (token: string) => Promise<JWTPayload>,
    private readonly now: () => number = Date.now,
  ) {}

  async claims(token: string): Promise<JWTPayload> {
    const now = this.now();
    const known = this.tokens.get(token);
    if (known && known.until > now) return known.claims;
    if (known) this.tokens.delete(token);
    const claims = await this.verify(token);
    // verify() requires `exp`; a token already in its clock tolerance is not remembered.
    const expiresAt = typeof claims.exp === 'number' ? claims.exp * 1000 : now;
    const until = Math.min(expiresAt, now + VERIFIED_TOKEN_TTL_MS);
    if (until > now) {
      if (this.tokens.size >= MAX_VERIFIED_TOKENS) this.tokens.clear();
      this.tokens.set(token, { claims, until });
    }
    return claims;
  }
}
