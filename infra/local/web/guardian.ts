/**
 * Parental permission on the page (docs/API.md, "Parental permission"). A teenager without consent sees
 * why buying and gifting are closed and asks a guardian by user name; the guardian, signed in
 * with their own adult account in another tab, sees the request in "Family", approves or
 * declines, and then manages the teenager there: withdraws permission or sets the monthly budget.
 * The server decides everything; this module only shows its answers and keeps them fresh.
 */
import * as z from 'zod/mini';
import { amountOf, byId, element, type PageKit } from './kit';
import { formatMoney, parseMoneyInput } from './page/format';

/** The teenager's page reads consent this often while it is shown, so a guardian's decision appears by itself. */
const CONSENT_REFRESH_MS = 3_000;
/** The guardian's page reads waiting requests this often while signed in. */
const INVITES_REFRESH_MS = 5_000;
/** localStorage: the teenagers a guardian approved from this browser (the API has no list of wards). */
const WARDS_KEY_PREFIX = 'live-gifting.wards.';
const MAX_WARDS_REMEMBERED = 20;
/** Currencies of the price lists (shared/domain/catalog.ts): a ward's budget is in the ward's. */
const BUDGET_CURRENCIES = ['USD', 'EUR', 'GBP', 'KRW', 'BRL', 'JPY'] as const;

const consentSchema = z.object({
  consented: z.boolean(),
  appConsent: z.enum(['granted', 'revoked', 'none']),
  guardianId: z.nullable(z.string()),
  decidedAt: z.nullable(z.string()),
});
export type Consent = z.infer<typeof consentSchema>;

const inviteSchema = z.object({
  inviteId: z.string(),
  teenId: z.string(),
  guardianId: z.string(),
  status: z.enum(['pending', 'approved', 'declined']),
  createdAt: z.string(),
  decidedAt: z.nullable(z.string()),
});
type Invite = z.infer<typeof inviteSchema>;
const invitesSchema = z.object({ items: z.array(inviteSchema) });
const revokedSchema = z.object({ teenId: z.string(), appConsent: z.literal('revoked'), decidedAt: z.string() });
const wardBudgetSchema = z.object({
  teenId: z.string(),
  monthlyLimit: z.object({ amount: z.int(), currency: z.string() }),
  setBy: z.literal('guardian'),
});

function dateOf(iso: string | null): string {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleString('en', { dateStyle: 'medium', timeStyle: 'short' });
}

// ---------------------------------------------------------------------------------------------
// The teenager's side.
// ---------------------------------------------------------------------------------------------

/** Whom this tab last asked, so that the card can say it is waiting. */
let askedGuardian: string | undefined;

/** What the consent card says; only a teenager's page shows it (app.ts decides). */
export function renderConsent(consent: Consent): void {
  byId('consent').hidden = false;
  const status = byId('consent-status');
  const when = dateOf(consent.decidedAt);
  status.dataset.state = consent.consented ? 'granted' : consent.appConsent === 'revoked' ? 'revoked' : 'missing';
  if (consent.consented && consent.appConsent === 'none') {
    status.textContent = "Your account already carries a parent's permission: you can buy coins and send gifts.";
  } else if (consent.consented) {
    status.textContent = `✓ ${consent.guardianId ?? 'Your guardian'} gave permission${when ? ` on ${when}` : ''}: you can buy coins and send gifts.`;
  } else if (consent.appConsent === 'revoked') {
    status.textContent = `${consent.guardianId ?? 'Your guardian'} withdrew permission${when ? ` on ${when}` : ''}: buying coins and sending gifts are closed.`;
  } else {
    const waiting = askedGuardian ? ` Waiting for ${askedGuardian} to answer.` : '';
    status.textContent = `You need a parent's or guardian's permission to buy coins or send gifts. Ask them below: they sign in with their own account and approve.${waiting}`;
  }
  byId('invite-form').hidden = consent.consented;
}

export async function loadConsent(kit: PageKit): Promise<Consent> {
  const consent = await kit.api('GET', '/v1/consent', consentSchema);
  renderConsent(consent);
  return consent;
}

export async function inviteGuardian(kit: PageKit, guardianId: string): Promise<void> {
  const invite = await kit.api('POST', '/v1/guardian-invites', inviteSchema, { body: { guardianId } });
  askedGuardian = invite.guardianId;
  kit.notify(`Asked ${invite.guardianId} for permission.`);
}

/** Keeps the consent card current while this session lasts; `onChange` hears every answer. */
export function watchConsent(kit: PageKit, onChange: (consent: Consent) => void): void {
  const epoch = kit.epoch();
  askedGuardian = undefined;
  const timer = setInterval(() => {
    if (epoch !== kit.epoch()) {
      clearInterval(timer);
      return;
    }
    if (document.hidden) return;
    loadConsent(kit).then(onChange, () => undefined);
  }, CONSENT_REFRESH_MS);
}

// ---------------------------------------------------------------------------------------------
// The guardian's side.
// ---------------------------------------------------------------------------------------------

const wardsKey = (guardianId: string) => `${WARDS_KEY_PREFIX}${guardianId}`;

function rememberedWards(guardianId: string): string[] {
  const parsed = z.array(z.string()).safeParse(
    (() => {
      try {
        return JSON.parse(localStorage.getItem(wardsKey(guardianId)) ?? '[]');
      } catch {
        return [];
      }
    })(),
  );
  return parsed.success ? parsed.data : [];
}

function rememberWard(guardianId: string, teenId: string): void {
  const wards = [teenId, ...rememberedWards(guardianId).filter((ward) => ward !== teenId)];
  localStorage.setItem(wardsKey(guardianId), JSON.stringify(wards.slice(0, MAX_WARDS_REMEMBERED)));
}

function inviteItem(kit: PageKit, invite: Invite): HTMLLIElement {
  const approve = element('button', { type: 'button', class: 'primary', 'data-testid': 'invite-approve' }, 'Approve');
  const decline = element('button', { type: 'button', 'data-testid': 'invite-decline' }, 'Decline');
  approve.setAttribute('aria-label', `Approve ${invite.teenId}'s request`);
  decline.setAttribute('aria-label', `Decline ${invite.teenId}'s request`);
  const decide = (decision: 'approve' | 'decline', button: HTMLButtonElement) =>
    void kit.busy(button, async () => {
      const decided = await kit.api(
        'POST',
        `/v1/guardian-invites/${encodeURIComponent(invite.inviteId)}/${decision}`,
        inviteSchema,
      );
      const me = kit.userId();
      if (decided.status === 'approved' && me) rememberWard(me, decided.teenId);
      kit.notify(
        decided.status === 'approved'
          ? `${decided.teenId} can now buy coins and send gifts.`
          : `You declined ${decided.teenId}'s request.`,
      );
      await refreshFamily(kit);
    });
  approve.addEventListener('click', () => decide('approve', approve));
  decline.addEventListener('click', () => decide('decline', decline));
  return element(
    'li',
    { 'data-testid': 'invite-item', 'data-teen-id': invite.teenId },
    element('span', {}, `${invite.teenId} asks for your permission to buy coins and send gifts.`),
    element('span', { class: 'row' }, approve, decline),
  );
}

function wardItem(kit: PageKit, teenId: string, currency: string): HTMLLIElement {
  const state = element('span', { class: 'fine', 'data-testid': 'ward-state' }, 'Permission given.');
  const revoke = element(
    'button',
    {
      type: 'button',
      class: 'danger',
      'data-testid': 'ward-revoke',
      'aria-label': `Withdraw permission for ${teenId}`,
    },
    'Withdraw permission',
  );
  revoke.addEventListener(
    'click',
    () =>
      void kit.busy(revoke, async () => {
        const revoked = await kit.api('POST', `/v1/wards/${encodeURIComponent(teenId)}/consent/revoke`, revokedSchema);
        state.textContent = `Permission withdrawn on ${dateOf(revoked.decidedAt)}.`;
        state.dataset.state = 'revoked';
        kit.notify(`You withdrew ${teenId}'s permission.`);
      }),
  );
  const amount = element('input', {
    inputmode: 'decimal',
    autocomplete: 'off',
    placeholder: '20.00',
    'aria-label': `Monthly budget for ${teenId}`,
    'data-testid': 'ward-budget-amount',
  });
  const currencies = element(
    'select',
    { 'aria-label': `Currency of ${teenId}'s budget`, 'data-testid': 'ward-budget-currency' },
    ...BUDGET_CURRENCIES.map((code) => element('option', { value: code }, code)),
  );
  currencies.value = BUDGET_CURRENCIES.some((code) => code === currency) ? currency : 'USD';
  const save = element(
    'button',
    { type: 'submit', 'data-testid': 'ward-budget-save', 'aria-label': `Set ${teenId}'s monthly budget` },
    'Set budget',
  );
  const budget = element('p', { class: 'fine', 'data-testid': 'ward-budget' });
  const form = element('form', { class: 'row', 'data-testid': 'ward-budget-form' }, amount, currencies, save);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void kit.busy(save, async () => {
      const minor = parseMoneyInput(amount.value, currencies.value);
      if (minor === undefined) {
        budget.textContent = 'Enter an amount such as 20.00.';
        return;
      }
      const set = await kit.api('PUT', `/v1/wards/${encodeURIComponent(teenId)}/budget`, wardBudgetSchema, {
        body: { monthlyLimit: { amount: minor, currency: currencies.value } },
      });
      budget.textContent = `Monthly budget ${formatMoney(set.monthlyLimit)}: ${teenId} can lower it, not raise it.`;
      budget.dataset.amount = String(set.monthlyLimit.amount);
      kit.notify(`${teenId}'s monthly budget is set.`);
    });
  });
  return element(
    'li',
    { 'data-testid': 'ward-item', 'data-teen-id': teenId },
    element('strong', {}, teenId),
    state,
    revoke,
    form,
    budget,
  );
}

let familyCurrency = 'USD';

/** The requests waiting for this guardian, and the teenagers they approved here. */
export async function refreshFamily(kit: PageKit): Promise<void> {
  const me = kit.userId();
  if (!me) return;
  const { items } = await kit.api('GET', '/v1/guardian-invites', invitesSchema);
  byId('invites-list').replaceChildren(...items.map((invite) => inviteItem(kit, invite)));
  byId('invites-empty').hidden = items.length > 0;
  byId('invites-count').textContent = items.length > 0 ? ` (${amountOf(items.length, 'request')})` : '';
  const wards = rememberedWards(me);
  const list = byId('wards-list');
  const shown = new Set(Array.from(list.children, (child) => (child as HTMLElement).dataset.teenId));
  // Wards already on screen keep their state (a withdrawal just made); new ones are added.
  for (const teenId of wards) if (!shown.has(teenId)) list.append(wardItem(kit, teenId, familyCurrency));
  byId('wards-empty').hidden = wards.length > 0;
}

/** The Family card for a signed-in adult: loaded now and kept current while the session lasts. */
export async function enterFamily(kit: PageKit, currency: string): Promise<void> {
  familyCurrency = currency;
  byId('family').hidden = false;
  byId('wards-list').replaceChildren();
  await refreshFamily(kit);
  const epoch = kit.epoch();
  const timer = setInterval(() => {
    if (epoch !== kit.epoch()) {
      clearInterval(timer);
      return;
    }
    if (!document.hidden) refreshFamily(kit).catch(() => undefined);
  }, INVITES_REFRESH_MS);
}

export function leaveFamily(): void {
  byId('family').hidden = true;
  byId('consent').hidden = true;
  byId('invites-list').replaceChildren();
  byId('wards-list').replaceChildren();
  askedGuardian = undefined;
}

/** The teenager's controls: ask a guardian, and look again now rather than at the next refresh. */
export function wireConsent(kit: PageKit, onChange: (consent: Consent) => void): void {
  byId('invite-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const button = form.querySelector<HTMLButtonElement>('button[type="submit"]');
    const guardianId = byId<HTMLInputElement>('invite-guardian').value.trim().toLowerCase();
    if (!button) return;
    void kit.busy(button, async () => {
      await inviteGuardian(kit, guardianId);
      onChange(await loadConsent(kit));
    });
  });
  const refresh = byId<HTMLButtonElement>('consent-refresh');
  refresh.addEventListener('click', () => void kit.busy(refresh, async () => onChange(await loadConsent(kit))));
  const family = byId<HTMLButtonElement>('family-refresh');
  family.addEventListener('click', () => void kit.busy(family, () => refreshFamily(kit)));
}
