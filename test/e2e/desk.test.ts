import { apiClient, expectBooksBalance } from '../support/local-stack';
import { useBrowserAndStack } from '../support/browser';

/**
 * Issue 14, the page's operator view of the support desk, in a real browser: an operator signs in
 * to the desk at /#desk, sees the open report, opens it (wallet, reported entry, refundable
 * recharge), refunds the recharge, lifts the lock with a note; the reporter's wallet and report
 * say so, and the books balance.
 */

const STEP_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 90_000;

jest.setTimeout(TEST_TIMEOUT_MS);

const environment = useBrowserAndStack();

const byTestId = (testId: string) => `[data-testid="${testId}"]`;

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out; last value ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

it('an operator lists, opens and resolves a reported purchase from the page: refunded once, lock lifted', async () => {
  if (!environment.stack || !environment.browser) throw new Error('the stack or the browser did not start');
  const api = apiClient(environment.stack.httpUrl);
  const token = await api.token({ sub: 'page-reporter', birthdate: '1990-01-01', country: 'US' });
  const bought = await api.request('POST', '/v1/recharges', {
    token,
    body: { packageId: 'coins_500' },
    headers: { 'idempotency-key': 'page-desk-buy' },
  });
  const rechargeId = String(bought.body.rechargeId);
  await api.request('POST', `/dev/payments/${String(bought.body.payment.paymentIntentId)}/succeed`);
  const history = await waitFor(
    () => api.request('GET', '/v1/wallet/transactions', { token }),
    (response) => response.body.items.length === 1,
  );
  const reported = await api.request('POST', `/v1/wallet/transactions/${String(history.body.items[0].id)}/report`, {
    token,
    body: { reason: 'my little brother bought this' },
  });
  const reportId = String(reported.body.reportId);

  const context = await environment.browser.newContext({ viewport: { width: 1024, height: 900 } });
  const errors: string[] = [];
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on('pageerror', (error) => errors.push(`${error.name}: ${error.message}`));
  try {
    await page.goto(`${environment.stack.httpUrl}/#desk`);
    await page.waitForSelector('html[data-ready="true"]');
    await page.fill(byTestId('desk-operator'), 'page-ops');
    await page.click(byTestId('desk-signin-submit'));
    const row = `${byTestId('desk-case-row')}[data-case-id="${reportId}"]`;
    await page.waitForSelector(row);
    expect(await page.textContent(row)).toContain('my little brother bought this');

    await page.click(`${row} ${byTestId('desk-open')}`);
    await page.waitForSelector(`${byTestId('desk-case')}:not([hidden])`);
    expect(await page.textContent(byTestId('desk-wallet'))).toBe('page-reporter: 500 coins, 0 owed, locked (owner)');
    expect(await page.textContent(byTestId('desk-reported-entry'))).toContain('recharge · 500 coins · reported');
    const refund = `${byTestId('desk-refund')}[value="${rechargeId}"]`;
    expect(await page.isEnabled(refund)).toBe(true);
    await page.check(refund);
    await page.check(byTestId('desk-lock-lift'));
    await page.fill(byTestId('desk-note'), 'parent called; refunded');
    await page.fill(byTestId('desk-reason'), 'purchase by a child');
    await page.click(byTestId('desk-resolve-submit'));
    await page.waitForFunction(
      (selector) => document.querySelector(selector)?.textContent?.includes('resolved'),
      byTestId('desk-status'),
    );
    await page.waitForSelector(row, { state: 'detached' });
    expect(await page.isHidden(byTestId('desk-alert'))).toBe(true);
    expect(errors).toEqual([]);
  } finally {
    await context.close();
  }

  // The reporter's side: coins taken back once, unlocked, the report resolved with its outcome.
  const wallet = await waitFor(
    () => api.request('GET', '/v1/wallet', { token }),
    (response) => response.body.coins === 0,
  );
  expect(wallet.body).toMatchObject({ coins: 0, owedCoins: 0, locked: false });
  const report = await api.request('GET', `/v1/wallet/reports/${reportId}`, { token });
  expect(report.body).toMatchObject({
    status: 'resolved',
    outcome: { lock: 'lifted', refundedRechargeIds: [rechargeId] },
  });
  const after = await api.request('GET', '/v1/wallet/transactions', { token });
  expect(after.body.items.map((item: { type: string }) => item.type)).toEqual(['chargeback', 'recharge']);
  await expectBooksBalance(environment.stack);
});
