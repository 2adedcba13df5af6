import type { Item } from '../ports/ledger-store';
import { isTeen, type Caller } from '../domain/identity';

/**
 * A teenager's spending rests on consent: the token's claim unless the app recorded a decision
 * (guardians.ts), and the app's decision wins. A gift's debit and a recharge's wallet check are
 * conditioned on it, so a guardian's revocation that commits between the request's read and its
 * transaction still stops it. Adults carry no condition.
 */
export type ConsentCondition = 'token-claim-not-revoked' | 'granted-in-app';

export function consentCondition(caller: Caller, now: Date): ConsentCondition | undefined {
  if (!isTeen(caller, now)) return undefined;
  return caller.parentalConsent ? 'token-claim-not-revoked' : 'granted-in-app';
}

export const CONSENT_EXPRESSIONS: Record<ConsentCondition, string> = {
  'token-claim-not-revoked': '(attribute_not_exists(appConsent) OR appConsent <> :revoked)',
  'granted-in-app': 'appConsent = :granted',
};

export function consentHolds(condition: ConsentCondition | undefined, old: Item | undefined): boolean {
  if (condition === undefined) return true;
  return condition === 'granted-in-app' ? old?.appConsent === 'granted' : old?.appConsent !== 'revoked';
}

/** The expression values the consent condition names. */
export function consentValues(condition: ConsentCondition | undefined): Record<string, string> {
  if (condition === undefined) return {};
  return condition === 'granted-in-app' ? { ':granted': 'granted' } : { ':revoked': 'revoked' };
}
