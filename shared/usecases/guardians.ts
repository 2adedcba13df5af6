import * as z from 'zod';
import { type ConsentDecision, guardianItems, pendingInvitesQuery } from '../adapters/dynamo/guardian-items';
import { keys } from '../adapters/dynamo/keys';
import { walletItems } from '../adapters/dynamo/wallet-items';
import type { Item, LedgerStore, WriteOp } from '../ports/ledger-store';
import { currencyForCountry } from '../domain/catalog';
import { derivedIdHex } from '../domain/derived-id';
import {
  AgeRestrictedError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  RegionUnavailableError,
  ValidationError,
} from '../domain/errors';
import { type AppConsent, assertAdult, type Caller, hasParentalConsent, isTeen } from '../domain/identity';
import type { Money } from '../domain/money';
import { commitBudgetChange } from './wallet-settings';

/**
 * Parental permission in the app. A teenager (13 to under the age of majority) invites a guardian
 * by their user id; the guardian, signed in with their own adult account, approves or declines.
 * Approval records consent on the teenager's wallet item (where recharges and gifts already read
 * the wallet), the guardian may revoke it, and may set the teenager's monthly budget, which the
 * teenager can then lower but not raise. Every decision is also kept as a consent record: who,
 * when, what. A consent claim in the token still counts while the app holds no decision.
 */

export interface GuardiansDeps {
  store: LedgerStore;
  now: () => Date;
  newId: (prefix: string, now: Date) => string;
}

/** What a use case that writes no new record needs. */
type ReadingDeps = Pick<GuardiansDeps, 'store' | 'now'>;

export type InviteStatus = 'pending' | 'approved' | 'declined';

export interface InviteView {
  inviteId: string;
  teenId: string;
  guardianId: string;
  status: InviteStatus;
  createdAt: string;
  decidedAt: string | null;
}

export interface ConsentView {
  /** Whether recharges and gifts are allowed on consent grounds right now. */
  consented: boolean;
  /** The app's decision, or `none` (then the token's claim counts). */
  appConsent: AppConsent | 'none';
  guardianId: string | null;
  decidedAt: string | null;
}

/** A guardian has at most this many invites waiting; more is spam, not family. */
export const MAX_PENDING_INVITES_LISTED = 50;

const inviteItem = z.object({
  inviteId: z.string(),
  teenId: z.string(),
  guardianId: z.string(),
  teenCountry: z.string().nullable().optional(),
  status: z.enum(['pending', 'approved', 'declined']),
  createdAt: z.string(),
  decidedAt: z.string().nullable().optional(),
});
type InviteItem = z.infer<typeof inviteItem>;

const view = (invite: InviteItem): InviteView => ({
  inviteId: invite.inviteId,
  teenId: invite.teenId,
  guardianId: invite.guardianId,
  status: invite.status,
  createdAt: invite.createdAt,
  decidedAt: invite.decidedAt ?? null,
});

/** One invite per teenager and guardian: asking again while it waits answers the same invite. */
export function inviteIdFor(teenId: string, guardianId: string): string {
  return `inv_${derivedIdHex('guardian-invite', teenId, guardianId).slice(0, 32)}`;
}

/** One decision for the consent trail, made at `now`. */
function consentRecordOp(
  deps: Pick<GuardiansDeps, 'store' | 'newId'>,
  teenId: string,
  now: Date,
  decision: ConsentDecision,
): WriteOp {
  const recorded = { at: now.toISOString(), recordId: deps.newId('cns', now) };
  return guardianItems.consentRecord(deps.store, teenId, recorded, decision);
}

/** POST /v1/guardian-invites { guardianId }: a teenager without consent in the app asks a guardian. */
export async function inviteGuardian(deps: ReadingDeps, caller: Caller, guardianId: string): Promise<InviteView> {
  const now = deps.now();
  if (!isTeen(caller, now))
    throw new AgeRestrictedError('Only a user from 13 to under the age of majority can invite a guardian.');
  if (guardianId === caller.userId)
    throw new ValidationError('You cannot be your own guardian.', {
      details: [{ path: 'body.guardianId', message: 'must be someone else' }],
    });
  const wallet = await deps.store.readWallet(caller.userId, { consistent: true });
  if (wallet.appConsent === 'granted') throw new ConflictError('A guardian has already given consent.');
  const inviteId = inviteIdFor(caller.userId, guardianId);
  const invite = {
    inviteId,
    teenId: caller.userId,
    guardianId,
    teenCountry: caller.country ?? null,
    createdAt: now.toISOString(),
  };
  try {
    // A decided invite is replaced by a new one; a waiting one is answered as it is.
    await deps.store.transactWrite([
      guardianItems.send(deps.store, invite, () => new ConflictError('already waiting')),
    ]);
    return view({ ...invite, status: 'pending', decidedAt: null });
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    return view(await readInvite(deps.store, inviteId));
  }
}

async function readInvite(store: LedgerStore, inviteId: string): Promise<InviteItem> {
  const item = await store.getItem(guardianItems.inviteKey(inviteId), { consistent: true });
  const parsed = inviteItem.safeParse(item);
  if (!parsed.success) throw new NotFoundError('No such invite.');
  return parsed.data;
}

/** GET /v1/guardian-invites: the invites waiting for the caller's decision, oldest first. */
export async function listPendingInvites(deps: ReadingDeps, caller: Caller): Promise<{ items: InviteView[] }> {
  const page = await deps.store.query(pendingInvitesQuery(caller.userId, MAX_PENDING_INVITES_LISTED));
  const items = page.items.flatMap((item) => {
    const parsed = inviteItem.safeParse(item);
    return parsed.success && parsed.data.status === 'pending' ? [view(parsed.data)] : [];
  });
  return { items };
}

/**
 * POST /v1/guardian-invites/{inviteId}/approve|decline. Only the invited guardian decides (anyone
 * else: NOT_FOUND, so an invite's existence does not leak), never the teenager, and approving
 * needs the guardian's own majority. Approval sets consent on the teenager's wallet item, links
 * the ward and records the decision, all in one transaction conditioned on the invite waiting.
 */
export async function decideInvite(
  deps: GuardiansDeps,
  caller: Caller,
  inviteId: string,
  decision: 'approve' | 'decline',
): Promise<InviteView> {
  const now = deps.now();
  const invite = await readInvite(deps.store, inviteId);
  if (invite.teenId === caller.userId) throw new ForbiddenError('You cannot decide your own invite.');
  if (invite.guardianId !== caller.userId) throw new NotFoundError('No such invite.');
  if (decision === 'approve') assertAdult(caller, now);
  if (invite.status !== 'pending') throw new ConflictError(`This invite was already ${invite.status}.`);
  const at = now.toISOString();
  const status: InviteStatus = decision === 'approve' ? 'approved' : 'declined';
  const ops: WriteOp[] = [
    guardianItems.decide(
      deps.store,
      inviteId,
      { status, at },
      () => new ConflictError('This invite was decided meanwhile.'),
    ),
    consentRecordOp(deps, invite.teenId, now, {
      action: decision === 'approve' ? 'granted' : 'declined',
      guardianId: caller.userId,
      inviteId,
    }),
  ];
  if (decision === 'approve') {
    ops.push(
      walletItems.grantConsent(deps.store, invite.teenId, {
        guardianId: caller.userId,
        at,
        country: invite.teenCountry ?? null,
      }),
      guardianItems.wardLink(deps.store, caller.userId, invite.teenId, at),
    );
  }
  await deps.store.transactWrite(ops);
  return view({ ...invite, status, decidedAt: at });
}

/** GET /v1/consent: the teenager's consent as recharges and gifts will judge it. */
export async function readConsent(deps: ReadingDeps, caller: Caller): Promise<ConsentView> {
  const item = await deps.store.getItem(keys.wallet(caller.userId), { consistent: true });
  return consentView(caller, item);
}

function consentView(caller: Caller, item: Item | undefined): ConsentView {
  const appConsent = item?.appConsent === 'granted' || item?.appConsent === 'revoked' ? item.appConsent : null;
  return {
    consented: hasParentalConsent(caller, appConsent),
    appConsent: appConsent ?? 'none',
    guardianId: typeof item?.consentGuardianId === 'string' ? item.consentGuardianId : null,
    decidedAt: typeof item?.consentAt === 'string' ? item.consentAt : null,
  };
}

/** Whether the teenager exists, or has another guardian, does not leak. */
const noSuchWard = () => new NotFoundError('No such ward.');

/** POST /v1/wards/{teenId}/consent/revoke: the guardian of record withdraws consent; it overrides the token. */
export async function revokeConsent(
  deps: GuardiansDeps,
  caller: Caller,
  teenId: string,
): Promise<{ teenId: string; appConsent: 'revoked'; decidedAt: string }> {
  const now = deps.now();
  const at = now.toISOString();
  await deps.store.transactWrite([
    walletItems.revokeConsent(deps.store, teenId, { guardianId: caller.userId, at }, noSuchWard),
    consentRecordOp(deps, teenId, now, { action: 'revoked', guardianId: caller.userId }),
  ]);
  return { teenId, appConsent: 'revoked', decidedAt: at };
}

/**
 * PUT /v1/wards/{teenId}/budget { monthlyLimit }: the guardian of record sets the teenager's
 * monthly budget, in the teenager's price-list currency. The change joins the budget history
 * the books check credits against, like the owner's own changes.
 */
export async function setWardBudget(
  deps: GuardiansDeps,
  caller: Caller,
  teenId: string,
  monthlyLimit: Money,
): Promise<{ teenId: string; monthlyLimit: Money; setBy: 'guardian' }> {
  const wallet = await deps.store.getItem(keys.wallet(teenId), { consistent: true });
  if (wallet?.consentGuardianId !== caller.userId) throw noSuchWard();
  const country = typeof wallet.consentCountry === 'string' ? wallet.consentCountry : undefined;
  if (country === undefined) throw new RegionUnavailableError("The teenager's country is unknown.");
  const currency = currencyForCountry(country);
  if (monthlyLimit.currency !== currency)
    throw new ValidationError(`The budget must be in ${currency}, the currency of the teenager's price list.`, {
      details: [{ path: 'body.monthlyLimit.currency', message: `must be ${currency}` }],
    });
  await commitBudgetChange(deps.store, deps.now(), (now, onLater) => {
    const at = now.toISOString();
    return [
      walletItems.budgetLimitChanged(deps.store, {
        userId: teenId,
        at,
        changeId: deps.newId('blc', now),
        limitMinor: monthlyLimit.amount,
        currency: monthlyLimit.currency,
        setBy: caller.userId,
      }),
      walletItems.setBudgetAsGuardian(
        deps.store,
        teenId,
        caller.userId,
        { limit: monthlyLimit, at },
        (old) => (old?.consentGuardianId === caller.userId ? onLater(old) : undefined) ?? noSuchWard(),
      ),
      consentRecordOp(deps, teenId, now, {
        action: 'budget_set',
        guardianId: caller.userId,
        limitMinor: monthlyLimit.amount,
      }),
    ];
  });
  return { teenId, monthlyLimit, setBy: 'guardian' };
}
