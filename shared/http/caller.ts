import * as z from 'zod';
import { claimsConfig } from '../config';
import { isCalendarDate, type Caller } from '../domain/identity';
import { UnauthorizedError } from '../domain/errors';
import { groupsFromClaims } from '../auth/operators';

/**
 * Claims arrive from the API Gateway JWT authorizer (or the local gateway playing it) already
 * verified, but as the authorizer passes them: booleans may be strings. They are still parsed.
 */
const claimBoolean = z.union([z.boolean(), z.enum(['true', 'false']).transform((value) => value === 'true')]);
/**
 * A birthdate that is not a real calendar date (`1990-13-45`) is treated as absent: the caller
 * is still who the token says (no 401), but age-gated actions answer AGE_RESTRICTED.
 */
const birthdate = z.string().refine(isCalendarDate);
const country = z
  .string()
  .regex(/^[A-Za-z]{2}$/)
  .transform((value) => value.toUpperCase());

export function callerFromClaims(claims: Record<string, unknown> | undefined): Caller {
  const names = claimsConfig();
  const sub = z.string().min(1).max(256).safeParse(claims?.sub);
  if (!sub.success) throw new UnauthorizedError('A valid bearer token is required.');
  const parsedBirthdate = birthdate.safeParse(claims?.[names.CLAIM_BIRTHDATE]);
  const parsedCountry = country.safeParse(claims?.[names.CLAIM_COUNTRY]);
  const consent = claimBoolean.safeParse(claims?.[names.CLAIM_PARENTAL_CONSENT]);
  return {
    userId: sub.data,
    ...(parsedBirthdate.success && { birthdate: parsedBirthdate.data }),
    ...(parsedCountry.success && { country: parsedCountry.data }),
    parentalConsent: consent.success ? consent.data : false,
    groups: groupsFromClaims(claims),
  };
}
