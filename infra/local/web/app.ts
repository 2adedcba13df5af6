/**
 * The live-room demo page (browser code, bundled by build.ts with esbuild). It talks only to the
 * public API and WebSocket of API.md, plus the local-only /dev routes for sign-in and for
 * completing a payment through the payments stand-in. Every answer is parsed (zod/mini keeps the
 * bundle small); every error code is shown in plain words.
 */
import { byId } from './kit';
import { mountDesk } from './desk';
import { wireConsent } from './guardian';
import { SESSION_KEY } from './page/limits';
import { applyConsent, enter, kit, signIn, signOut } from './page/sign-in';
import { busy, showError } from './page/notices';
import { endStream, goLive, leaveRoom, refreshStreams, renderSpendable } from './page/streams';
import { linkPayoutAccount, renderPayoutEstimate, requestPayout } from './page/payouts';
import { pay, resumeRedirectPayment } from './page/buy';
import { refreshHistory, saveBudget } from './page/wallet';
import { sessionSchema } from './page/answers';
import { state } from './page/state';

function on<K extends keyof HTMLElementEventMap>(
  id: string,
  type: K,
  listener: (event: HTMLElementEventMap[K]) => void,
): void {
  byId(id).addEventListener(type, listener);
}

function submitButton(form: HTMLFormElement): HTMLButtonElement {
  const button = form.querySelector<HTMLButtonElement>('button[type="submit"]');
  if (!button) throw new Error(`form #${form.id} has no submit button`);
  return button;
}

function wire(): void {
  wireConsent(kit, applyConsent);
  on('signin-form', 'submit', (event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    void busy(submitButton(form), () => signIn(form));
  });
  on('signout', 'click', () => signOut());
  on('budget-form', 'submit', (event) => {
    event.preventDefault();
    void busy(submitButton(event.currentTarget as HTMLFormElement), () => saveBudget(false));
  });
  on('budget-clear', 'click', (event) => void busy(event.currentTarget as HTMLButtonElement, () => saveBudget(true)));
  on(
    'history-more',
    'click',
    (event) => void busy(event.currentTarget as HTMLButtonElement, () => refreshHistory(true)),
  );
  on('checkout-pay', 'click', (event) => void busy(event.currentTarget as HTMLButtonElement, pay));
  on('checkout-cancel', 'click', () => {
    state.checkout = undefined;
    byId<HTMLDialogElement>('checkout').close();
  });
  on('golive-form', 'submit', (event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    void busy(submitButton(form), () => goLive(form));
  });
  on('end-stream', 'click', (event) => void busy(event.currentTarget as HTMLButtonElement, endStream));
  on('streams-refresh', 'click', (event) => void busy(event.currentTarget as HTMLButtonElement, refreshStreams));
  on('room-leave', 'click', () => leaveRoom());
  on('payout-link', 'click', (event) => void busy(event.currentTarget as HTMLButtonElement, linkPayoutAccount));
  on('payout-form', 'submit', (event) => {
    event.preventDefault();
    void busy(submitButton(event.currentTarget as HTMLFormElement), requestPayout);
  });
  on('payout-diamonds', 'input', () => renderPayoutEstimate());
  on('gift-quantity', 'input', () => renderSpendable());
}

function restoreSession(): void {
  const stored = sessionStorage.getItem(SESSION_KEY);
  if (!stored) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(stored);
  } catch {
    parsed = undefined;
  }
  const result = sessionSchema.safeParse(parsed);
  if (!result.success) {
    sessionStorage.removeItem(SESSION_KEY);
    return;
  }
  state.session = result.data;
  enter().then(resumeRedirectPayment).catch(showError);
}

wire();
restoreSession();
mountDesk();
document.documentElement.dataset.ready = 'true';
