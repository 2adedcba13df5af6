import type { Item } from '../ports/ledger-store';
import type { ConsentCondition } from '../adapters/dynamo/wallet-items';
import { isTeen, type Caller } from '../domain/identity';

/**
 * A teenager's spending rests on consent: the token's claim unless the app recorded a decision
 * (guardians.ts), and the app's decision wins. A gift's debit and a recharge's wallet check are
 * conditioned on it, so a guardian's revocation that commits between the request's read and its
 * transaction still stops it. Adults carry no condition. The conditions' expressions live with
 * the wallet item (shared/adapters/dynamo/wallet-items.ts).
 */
export type { ConsentCondition };

export function consentCondition(caller: Caller, now: Date): ConsentCondition | undefined {
  if (!isTeen(caller, now)) return undefined;
  return caller.parentalConsent ? 'token-claim-not-revoked' : 'granted-in-app';
}

/** Whether the wallet item as it was (a failed write's old item) met the consent condition. */
export function consentHolds(condition: ConsentCondition | undefined, old: Item | undefined): boolean {
  if (condition === undefined) return true;
  return condition === 'granted-in-app' ? old?.appConsent === 'granted' : old?.appConsent !== 'revoked';
}
