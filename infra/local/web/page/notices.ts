/** Notices and errors on the page, and the busy state of buttons. */
import { byId } from '../kit';
import { ApiError, plainWords } from './words';
import { NOTICE_DURATION_MS } from './limits';
import { state } from './state';

export function notify(text: string): void {
  const notice = byId('notice');
  notice.textContent = text;
  clearTimeout(state.noticeTimer);
  state.noticeTimer = setTimeout(() => (notice.textContent = ''), NOTICE_DURATION_MS);
}

export function showError(error: unknown): void {
  if (!(error instanceof ApiError)) console.error(error);
  const text = plainWords(error);
  const checkout = byId<HTMLDialogElement>('checkout');
  if (checkout.open) {
    // The modal dialog covers the page: say it where the person is looking.
    byId('checkout-status').textContent = text;
    byId('checkout-status').dataset.state = 'error';
  }
  const alert = byId('alert');
  alert.textContent = text;
  alert.dataset.code = error instanceof ApiError ? error.code : 'INTERNAL';
  alert.hidden = false;
  clearTimeout(state.alertTimer);
  state.alertTimer = setTimeout(() => (alert.hidden = true), NOTICE_DURATION_MS * 2);
}

export function clearError(): void {
  clearTimeout(state.alertTimer);
  const alert = byId('alert');
  alert.hidden = true;
  alert.textContent = '';
  delete alert.dataset.code;
}

/** Sign-out: nothing said to the last person stays on screen for the next one. */
export function clearMessages(): void {
  clearError();
  clearTimeout(state.noticeTimer);
  byId('notice').textContent = '';
  const status = byId('checkout-status');
  status.textContent = '';
  delete status.dataset.state;
  byId('payment-return').hidden = true;
}

/**
 * Runs a button's action with the button disabled, showing any error in words; an error that
 * comes back after a sign-out belongs to the earlier person and is not shown to the next one.
 */
export async function busy(button: HTMLButtonElement, action: () => Promise<void>): Promise<void> {
  if (button.disabled) return;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  const epoch = state.sessionEpoch;
  try {
    await action();
  } catch (error) {
    if (epoch === state.sessionEpoch) showError(error);
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}
