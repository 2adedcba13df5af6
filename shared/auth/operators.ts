import * as z from 'zod';
import { claimsConfig } from '../config';
import { ForbiddenError } from '../domain/errors';
import type { Caller } from '../domain/identity';

/**
 * Who an operator is (the trust-and-safety work reuses it): a caller whose groups claim
 * holds the configured operator group. On AWS that is the Cognito group `operators` in
 * `cognito:groups`; locally `POST /dev/tokens` signs `groups: ["operators"]` into the same claim.
 * The claim's name and the group's name are configuration (CLAIM_GROUPS, OPERATOR_GROUP), like
 * the other claims.
 */

/** A group name as an identity provider writes it: no blanks and no brackets, so "[a b]" splits back. */
export const GROUP_NAME = /^[^\s[\]]{1,128}$/;
/** More groups than this in a token is not a token we issued or expect; the rest are ignored. */
export const MAX_GROUPS = 100;

const groupList = z.array(z.string()).max(MAX_GROUPS);

/**
 * The groups claim in both forms it arrives in. API Gateway's JWT authorizer hands array claims
 * to Lambda flattened into one string, `"[operators support]"` (and `"[]"` for none); a caller
 * that forwards the verified payload itself (the WebSocket authorizer) keeps the JSON array.
 * A single group written as a plain string also counts. Anything else is no group at all: a
 * malformed claim never makes anyone an operator.
 */
export function parseGroupsClaim(value: unknown): string[] {
  let names: string[];
  if (Array.isArray(value)) {
    const parsed = groupList.safeParse(value);
    if (!parsed.success) return [];
    names = parsed.data;
  } else if (typeof value === 'string') {
    const trimmed = value.trim();
    const inner = trimmed.startsWith('[') && trimmed.endsWith(']') ? trimmed.slice(1, -1) : trimmed;
    names = inner.split(/\s+/).filter((name) => name !== '');
  } else {
    return [];
  }
  return names.slice(0, MAX_GROUPS).filter((name) => GROUP_NAME.test(name));
}

/** The caller's groups, read from verified claims under the configured claim name. */
export function groupsFromClaims(claims: Record<string, unknown> | undefined): string[] {
  return parseGroupsClaim(claims?.[claimsConfig().CLAIM_GROUPS]);
}

export function isOperator(caller: Caller): boolean {
  return (caller.groups ?? []).includes(claimsConfig().OPERATOR_GROUP);
}

/** Every operator route starts here: anyone else is 403 FORBIDDEN, before any read or write. */
export function assertOperator(caller: Caller): void {
  if (!isOperator(caller)) throw new ForbiddenError('This needs an operator.');
}

/**
 * What API Gateway's JWT authorizer does to a claim before Lambda sees it: arrays become one
 * bracketed, space-separated string. The local gateway applies it so the handlers meet the same
 * shapes locally as on AWS.
 */
export function flattenClaimForLambda(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  return `[${value.map((element) => String(element)).join(' ')}]`;
}
