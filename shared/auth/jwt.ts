import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { authConfig } from '../config';
import { UnauthorizedError } from '../domain/errors';

/**
 * Verifies a bearer token against the configured OIDC issuer: signature by a key of the
 * issuer's JWKS, `iss`, `aud`, `exp`. Only asymmetric algorithms are accepted, so `alg: none`
 * and HMAC tokens forged with the public key are refused. Used by the WebSocket authorizer on
 * AWS (the HTTP API has API Gateway's JWT authorizer) and by the local gateway for both.
 */
const ACCEPTED_ALGORITHMS = ['RS256', 'ES256'];
/** Clock skew tolerated between the issuer and us. */
const CLOCK_TOLERANCE_SECONDS = 30;

let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

export async function verifyBearerToken(token: string): Promise<JWTPayload> {
  const config = authConfig();
  jwks ??= createRemoteJWKSet(
    new URL(config.JWT_JWKS_URL ?? `${config.JWT_ISSUER.replace(/\/$/, '')}/.well-known/jwks.json`),
  );
  try {
    const { payload } = await jwtVerify(token, jwks, {
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
      algorithms: ACCEPTED_ALGORITHMS,
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ['sub', 'exp'],
    });
    return payload;
  } catch (error) {
    if (error instanceof joseErrors.JOSEError)
      throw new UnauthorizedError('The token is missing, malformed, expired or not signed by the issuer.');
    throw error;
  }
}

/** Forget the issuer's keys, so the next verification fetches them from the configured JWKS URL again. */
export function forgetJwks(): void {
  jwks = undefined;
}
