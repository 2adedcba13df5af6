/** Sign-in and sign-out, and what the page shows a teenager who needs a guardian. */
import { type Consent, enterFamily, leaveFamily, loadConsent, renderConsent, watchConsent } from '../guardian';
import { MINIMUM_AGE, ageOfMajority, ageOn, isCalendarDate } from '../../../../shared/domain/identity';
import { type PageKit, byId } from '../kit';
import { ApiError } from './words';
import { MAX_NAME_LENGTH, SESSION_KEY } from './limits';
import { api } from './api';
import { busy, clearError, clearMessages, notify, showError } from './notices';
import { loadCatalog } from './buy';
import { loadGifts, refreshStreams, renderSpendable, resumeOwnStream, startStreamsRefresh } from './streams';
import { refreshPayoutAccount, refreshPayouts, shownPayoutStatus } from './payouts';
import { refreshWallet } from './wallet';
import { state } from './state';
import { tokenClaims } from './room';
import { tokenSchema } from './answers';

/** The birthdate of someone who turned `age` yesterday: unambiguous whatever the time zone. */
function birthdateForAge(age: number): string {
  const today = new Date();
  const birth = new Date(Date.UTC(today.getUTCFullYear() - age, today.getUTCMonth(), today.getUTCDate() - 1));
  return birth.toISOString().slice(0, 10);
}

function userIdFromName(name: string): string {
  return name
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9_.@-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_NAME_LENGTH);
}

export async function signIn(form: HTMLFormElement): Promise<void> {
  const data = new FormData(form);
  const userId = userIdFromName(String(data.get('name') ?? ''));
  if (userId === '')
    throw new ApiError('VALIDATION_FAILED', 'name', 400, [{ path: 'name', message: 'use letters or digits' }]);
  const age = Number(data.get('age'));
  if (!Number.isInteger(age) || age < 1)
    throw new ApiError('VALIDATION_FAILED', 'age', 400, [{ path: 'age', message: 'a whole number of years' }]);
  const country = String(data.get('country') ?? 'US');
  const role = data.get('role') === 'creator' ? 'creator' : 'viewer';
  const { token } = await api('POST', '/dev/tokens', tokenSchema, {
    body: { sub: userId, birthdate: birthdateForAge(age), country, parentalConsent: data.get('consent') === 'on' },
  });
  state.session = { token, userId, role, country };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(state.session));
  await enter();
}

export function signOut(): void {
  state.sessionEpoch += 1;
  state.room?.leave();
  state.room = undefined;
  state.session = undefined;
  state.wallet = undefined;
  state.consent = undefined;
  state.checkout = undefined;
  const dialog = byId<HTMLDialogElement>('checkout');
  if (dialog.open) dialog.close();
  clearMessages();
  leaveFamily();
  sessionStorage.removeItem(SESSION_KEY);
  clearInterval(state.streamsTimer);
  for (const id of ['wallet', 'buy', 'studio', 'lobby', 'room', 'whoami']) byId(id).hidden = true;
  byId('signin').hidden = false;
  delete document.body.dataset.role;
  byId('payouts-list').replaceChildren();
  shownPayoutStatus.clear();
  byId('history-list').replaceChildren();
}

/** What the page's parts (guardian.ts, an operator's desk) get from here: see kit.ts. */
export const kit: PageKit = {
  api,
  notify,
  showError,
  userId: () => state.session?.userId,
  epoch: () => state.sessionEpoch,
  busy,
};

/**
 * Whether the signed-in person is a teenager, by the token's birthdate and country and the
 * API's own rule (shared/domain/identity.ts): only they need a guardian. The server decides
 * every request; this only chooses what the page shows.
 */
function signedInAs(): 'teen' | 'adult' | 'child' {
  if (!state.session) return 'child';
  const claims = tokenClaims(state.session.token);
  const birthdate =
    typeof claims.birthdate === 'string' && isCalendarDate(claims.birthdate) ? claims.birthdate : undefined;
  if (birthdate === undefined) return 'child';
  const age = ageOn(birthdate, new Date());
  if (age >= ageOfMajority(state.session.country)) return 'adult';
  return age >= MINIMUM_AGE ? 'teen' : 'child';
}

/** Consent decides whether buying and gifting are open; a change re-renders both. */
export function applyConsent(fresh: Consent): void {
  state.consent = fresh;
  renderConsent(fresh);
  renderSpendable();
}

/**
 * A teenager sees the consent card (why buying and gifting are closed, or who allowed them),
 * kept current; an adult sees "Family", where a guardian answers. A child sees neither.
 */
async function enterConsent(): Promise<void> {
  const who = signedInAs();
  if (who === 'adult') {
    await enterFamily(kit, state.wallet?.budget.spentThisMonth.currency ?? 'USD');
    return;
  }
  if (who !== 'teen') return;
  applyConsent(await loadConsent(kit));
  watchConsent(kit, applyConsent);
}

export async function enter(): Promise<void> {
  if (!state.session) return;
  const current = state.session;
  clearError();
  byId('signin').hidden = true;
  byId('whoami').hidden = false;
  byId('whoami-name').textContent = `${current.userId} · ${current.role} · ${current.country}`;
  document.body.dataset.role = current.role;
  byId('wallet').hidden = false;
  byId('buy').hidden = false;
  byId('studio').hidden = current.role !== 'creator';
  byId('lobby').hidden = current.role !== 'viewer';
  await Promise.all([refreshWallet(), loadCatalog(), loadGifts(), enterConsent()]);
  if (current.role === 'creator') {
    await Promise.all([resumeOwnStream(), refreshPayoutAccount(), refreshPayouts()]);
  } else {
    await refreshStreams();
    startStreamsRefresh();
  }
}
