import type { PaymentIntent } from './state';

/**
 * The stand-in's page for a redirect method (PayPal): what the customer sees after the app sends
 * them to `next_action.redirect_to_url.url`. Its buttons approve, approve with a late settlement,
 * or cancel, and then send the customer back to the app's `return_url` with Stripe's query
 * parameters (`payment_intent`, `payment_intent_client_secret`, `redirect_status`).
 */

export const REDIRECT_PAGE_PATH = /^\/redirect\/(paypal)\/([^/]+)$/;
export const REDIRECT_ACTION_PATH = /^\/redirect\/(paypal)\/([^/]+)\/(approve|approve-late|cancel)$/;

export type RedirectAction = 'approve' | 'approve-late' | 'cancel';

/** Stripe's `redirect_status` after each choice. */
export const REDIRECT_STATUS: Readonly<Record<RedirectAction, 'succeeded' | 'processing' | 'failed'>> = {
  approve: 'succeeded',
  'approve-late': 'processing',
  cancel: 'failed',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

function formatAmount(paymentIntent: PaymentIntent): string {
  return `${(paymentIntent.amount / 100).toFixed(2)} ${paymentIntent.currency.toUpperCase()}`;
}

export function redirectPage(method: string, paymentIntent: PaymentIntent): string {
  const base = `/redirect/${encodeURIComponent(method)}/${encodeURIComponent(paymentIntent.id)}`;
  const button = (action: RedirectAction, label: string) =>
    `<form method="post" action="${base}/${action}"><button type="submit" data-action="${action}">${escapeHtml(label)}</button></form>`;
  return [
    '<!doctype html><html><head><meta charset="utf-8"><title>PayPal (local stand-in)</title></head><body>',
    '<h1>PayPal (local stand-in)</h1>',
    `<p>Pay <strong data-amount>${escapeHtml(formatAmount(paymentIntent))}</strong> with PayPal?</p>`,
    button('approve', 'Approve and pay'),
    button('approve-late', 'Approve (the payment settles later)'),
    button('cancel', 'Cancel and return'),
    '</body></html>',
  ].join('');
}

/** The app's return_url with Stripe's parameters; only http(s) (it was checked when the payment was created). */
export function returnLocation(returnUrl: string, paymentIntent: PaymentIntent, action: RedirectAction): string {
  const url = new URL(returnUrl);
  url.searchParams.set('payment_intent', paymentIntent.id);
  url.searchParams.set('payment_intent_client_secret', paymentIntent.client_secret);
  url.searchParams.set('redirect_status', REDIRECT_STATUS[action]);
  return url.toString();
}
