import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import * as z from 'zod';

/**
 * The local OIDC issuer: one ES256 key kept under the data folder (so tokens survive a
 * restart), its JWKS served by the local gateway, and tokens signed for /dev/tokens. On AWS,
 * Cognito (or the configured issuer) plays this part.
 */
export const LOCAL_AUDIENCE = 'live-gifting-local';
export const LOCAL_KEY_ID = 'local-issuer-1';
/** Demo tokens last a working day. */
export const LOCAL_TOKEN_LIFETIME_SECONDS = 12 * 60 * 60;

const storedKey = z.object({
  privateJwk: z.record(z.string(), z.unknown()),
  publicJwk: z.record(z.string(), z.unknown()),
});

export async function ensureIssuerKey(keyFile: string): Promise<{ publicJwk: JWK }> {
  if (existsSync(keyFile)) {
    const parsed = storedKey.parse(JSON.parse(readFileSync(keyFile, 'utf8')));
    return { publicJwk: parsed.publicJwk as JWK };
  }
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const privateJwk = { ...(await exportJWK(privateKey)), kid: LOCAL_KEY_ID, alg: 'ES256' };
  const publicJwk = { ...(await exportJWK(publicKey)), kid: LOCAL_KEY_ID, alg: 'ES256', use: 'sig' };
  mkdirSync(dirname(keyFile), { recursive: true });
  writeFileSync(`${keyFile}.tmp`, JSON.stringify({ privateJwk, publicJwk }), { mode: 0o600 });
  renameSync(`${keyFile}.tmp`, keyFile);
  return { publicJwk };
}

export interface LocalClaims {
  sub: string;
  birthdate?: string;
  country?: string;
  parentalConsent?: boolean;
  /** Signed as Cognito does, into `cognito:groups` (e.g. ["operators"]). */
  groups?: string[];
}

export async function signLocalToken(
  keyFile: string,
  issuer: string,
  claims: LocalClaims,
  options: { lifetimeSeconds?: number; now?: Date } = {},
): Promise<string> {
  const parsed = storedKey.parse(JSON.parse(readFileSync(keyFile, 'utf8')));
  const key = await importJWK(parsed.privateJwk as JWK, 'ES256');
  const issuedAt = Math.floor((options.now ?? new Date()).getTime() / 1000);
  return new SignJWT({
    ...(claims.birthdate !== undefined && { birthdate: claims.birthdate }),
    ...(claims.country !== undefined && { country: claims.country.toUpperCase() }),
    ...(claims.parentalConsent !== undefined && { parental_consent: claims.parentalConsent }),
    ...(claims.groups !== undefined && { 'cognito:groups': claims.groups }),
  })
    .setProtectedHeader({ alg: 'ES256', kid: LOCAL_KEY_ID, typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuer(issuer)
    .setAudience(LOCAL_AUDIENCE)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + (options.lifetimeSeconds ?? LOCAL_TOKEN_LIFETIME_SECONDS))
    .sign(key);
}
