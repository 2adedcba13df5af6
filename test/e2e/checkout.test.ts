import type { Page } from 'playwright-core';
import { apiClient, expectBooksBalance } from '../support/local-stack';
import { useBrowserAndStack } from '../support/browser';

/**
 * Issue 13, part 5, in a real browser: the package list shows a running offer with its end; the
 * checkout has a method picker and shows the whole breakdown before paying; PayPal goes through
 * the payments stand-in's redirect page and back; the offer's bonus coins arrive with the coins.
 */

const PHONE = { width: 390, height: 844 };
const STEP_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 90_000;

jest.setTimeout(TEST_TIMEOUT_MS);

const environment = useBrowserAndStack();

const byTestId = (testId: string) => `[data-testid="${testId}"]`;

async function waitForValue(page: Page, testId: string, value: number): Promise<void> {
  await page.waitForFunction(
    ([selector, expected]) => document.querySelector(selector)?.getAttribute('data-value') === expected,
    [byTestId(testId), String(value)] as const,
    { timeout: STEP_TIMEOUT_MS },
  );
}

async function breakdown(page: Page): Promise<string[]> {
  return page.$$eval(`${byTestId('checkout-breakdown')} li`, (rows) =>
    rows.map((row) => Array.from(row.children, (cell) => cell.textContent ?? '').join(' ')),
  );
}

it('offers with their end, a method picker, the breakdown before paying, and PayPal through the redirect', async () => {
  if (!environment.stack || !environment.browser) throw new Error('the stack or the browser did not start');
  const api = apiClient(environment.stack.httpUrl);
  const operator = await api.token({ sub: 'page-operator', groups: ['operators'] });
  const endsAt = new Date(Date.now() + 3_600_000).toISOString();
  const offer = await api.request('POST', '/v1/operator/offers', {
    token: operator,
    body: { packageId: 'coins_10000', kind: 'bonus', bonusCoins: 1000, endsAt },
  });
  expect(offer.status).toBe(201);

  const context = await environment.browser.newContext({ viewport: PHONE });
  const errors: string[] = [];
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on('pageerror', (error) => errors.push(`${error.name}: ${error.message}`));
  try {
    await page.goto(environment.stack.httpUrl);
    await page.waitForSelector('html[data-ready="true"]');
    await page.fill(byTestId('signin-name'), 'paula');
    await page.fill(byTestId('signin-age'), '30');
    await page.selectOption(byTestId('signin-country'), 'US');
    await page.check(byTestId('signin-role-viewer'));
    await page.click(byTestId('signin-submit'));
    await page.waitForSelector(byTestId('whoami'));

    // The offer, with its bonus and its end, on its package.
    const badge = byTestId('package-offer-coins_10000');
    await page.waitForSelector(badge);
    expect(await page.textContent(badge)).toMatch(/\+1,000 bonus coins · ends /);
    expect(await page.getAttribute(badge, 'data-ends-at')).toBe(endsAt);

    // The checkout: a method picker and the breakdown, before anything is paid.
    await page.click(byTestId('package-coins_500'));
    await page.waitForSelector(`${byTestId('checkout-dialog')}[open]`);
    expect(await page.isChecked(byTestId('method-card'))).toBe(true);
    expect(await breakdown(page)).toEqual(['500 coins $5.99', 'Platform fee $0.00', 'Card fee $0.00', 'Total $5.99']);
    await page.check(byTestId('method-paypal'));
    expect((await breakdown(page)).slice(-2)).toEqual(['PayPal fee $0.00', 'Total $5.99']);
    expect(await page.textContent(byTestId('checkout-pay'))).toBe('Pay $5.99 with PayPal');

    // PayPal: away to the stand-in's PayPal page, approve, and back.
    await page.click(byTestId('checkout-pay'));
    await page.waitForURL(/\/redirect\/paypal\/pi_/);
    expect(await page.textContent('[data-amount]')).toBe('5.99 USD');
    await page.click('button[data-action="approve"]');
    await page.waitForURL(
      (url) => url.href.startsWith(environment.stack?.httpUrl ?? '') && !url.pathname.includes('redirect'),
    );
    await page.waitForSelector(`${byTestId('payment-return')}:not([hidden])`);
    await waitForValue(page, 'wallet-coins', 500);
    await page.waitForFunction(
      (selector) => document.querySelector(selector)?.textContent?.includes('Paid with PayPal: 500 coins added.'),
      byTestId('payment-return'),
    );

    // The offer's package by card: the summary counts the bonus, and it arrives.
    await page.click(byTestId('package-coins_10000'));
    await page.waitForSelector(`${byTestId('checkout-dialog')}[open]`);
    expect(await page.textContent(byTestId('checkout-summary'))).toBe('10,000 coins + 1,000 bonus for $109.99.');
    await page.click(byTestId('checkout-pay'));
    await waitForValue(page, 'wallet-coins', 11_500);
    await page.waitForSelector(`${byTestId('history-item')}[data-type="recharge_bonus"]`, { state: 'attached' });
    expect(errors).toEqual([]);
  } finally {
    await context.close();
  }
  await expectBooksBalance(environment.stack);
});
