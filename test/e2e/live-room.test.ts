import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { useBrowserAndStack } from '../support/browser';

/**
 * The demo page in a real browser (Debian's Chromium, driven by playwright-core): a creator and
 * a viewer in two browser contexts, each talking only to the public API and the WebSocket.
 * The creator goes live; the viewer buys coins through the checkout and the payments stand-in,
 * joins and sends gifts; both pages show the gifts and the right balances (the creator's
 * connection is dropped on the way, so its page has to reconnect and catch up); the creator
 * links a payout account, requests a payout and sees it paid. The README's screenshots are
 * taken on the way.
 */

/**
 * The README's screenshots are refreshed with UPDATE_SCREENSHOTS=true; otherwise they go to a
 * temporary directory, so that a test run does not rewrite tracked files (times on the page
 * change every run).
 */
const SCREENSHOTS =
  process.env.UPDATE_SCREENSHOTS === 'true'
    ? join(__dirname, '..', '..', 'docs', 'screenshots')
    : join(tmpdir(), 'live-room-screenshots');
/** A phone-sized viewport: the page is built for it. */
const PHONE = { width: 390, height: 844 };
const STEP_TIMEOUT_MS = 15_000;
/** docs/API.md: locally a payout is paid within 10 seconds. */
const PAYOUT_PAID_TIMEOUT_MS = 20_000;
/** The stack, the browser and the whole story fit well inside this on a busy 2-core machine. */
const TEST_TIMEOUT_MS = 90_000;

jest.setTimeout(TEST_TIMEOUT_MS);

const environment = useBrowserAndStack();

const byTestId = (testId: string) => `[data-testid="${testId}"]`;

async function openPage(context: BrowserContext, errors: string[]): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on('pageerror', (error) => errors.push(`${error.name}: ${error.message}`));
  if (!environment.stack) throw new Error('the stack did not start');
  await page.goto(environment.stack.httpUrl);
  await page.waitForSelector('html[data-ready="true"]');
  return page;
}

async function signIn(page: Page, person: { name: string; age: number; role: 'viewer' | 'creator' }): Promise<void> {
  await page.fill(byTestId('signin-name'), person.name);
  await page.fill(byTestId('signin-age'), String(person.age));
  await page.selectOption(byTestId('signin-country'), 'US');
  await page.check(byTestId(`signin-role-${person.role}`));
  await page.click(byTestId('signin-submit'));
  await page.waitForSelector(byTestId('whoami'));
}

/** Waits until an element's data-value (the raw integer behind the formatted text) is `value`. */
async function waitForValue(page: Page, testId: string, value: number, timeout = STEP_TIMEOUT_MS): Promise<void> {
  try {
    await page.waitForFunction(
      ([selector, expected]) => document.querySelector(selector)?.getAttribute('data-value') === expected,
      [byTestId(testId), String(value)] as const,
      { timeout },
    );
  } catch (error) {
    const actual = await page.getAttribute(byTestId(testId), 'data-value');
    const alert = await page.textContent(byTestId('alert'));
    throw new Error(`${testId} stayed at ${actual}, expected ${value} (alert: ${alert ?? ''})`, { cause: error });
  }
}

async function waitForAttribute(
  page: Page,
  testId: string,
  attribute: string,
  value: string,
  timeout = STEP_TIMEOUT_MS,
): Promise<void> {
  await page.waitForSelector(`${byTestId(testId)}[data-${attribute}="${value}"]`, { timeout });
}

async function feedGiftIds(page: Page): Promise<string[]> {
  return page.$$eval(`${byTestId('gift-feed')} ${byTestId('gift-feed-item')}`, (items) =>
    items.map((item) => item.getAttribute('data-gift-id') ?? ''),
  );
}

/** Brings a section to the top of the screen (for the screenshots). */
async function scrollToTop(page: Page, sectionId: string): Promise<void> {
  await page.evaluate((id) => document.getElementById(id)?.scrollIntoView({ block: 'start' }), sectionId);
}

/** Every visible control has an accessible name: a label, aria-label(ledby) or its own text. */
async function unnamedControls(page: Page): Promise<string[]> {
  return page.$$eval('button, input, select, textarea, a[href]', (controls) =>
    controls
      .filter((control) => (control as HTMLElement).offsetParent !== null)
      .filter((control) => {
        const labels = 'labels' in control ? (control as HTMLInputElement).labels : null;
        const labelled = labels !== null && labels.length > 0;
        const named =
          control.getAttribute('aria-label') || control.getAttribute('aria-labelledby') || control.textContent?.trim();
        return !labelled && !named;
      })
      .map((control) => control.outerHTML.slice(0, 120)),
  );
}

async function sendGift(page: Page, giftId: string, quantity: number): Promise<void> {
  await page.fill(byTestId('gift-quantity'), String(quantity));
  await page.click(byTestId(`gift-${giftId}`));
}

it('a viewer buys coins and gifts a live creator, who sees the gifts and is paid out', async () => {
  if (!environment.stack || !environment.browser) throw new Error('the stack or the browser did not start');
  mkdirSync(SCREENSHOTS, { recursive: true });
  const errors: string[] = [];
  // The Event API stand-in serves a certificate generated at start, for 127.0.0.1 only.
  const creatorContext = await environment.browser.newContext({
    viewport: PHONE,
    deviceScaleFactor: 2,
    ignoreHTTPSErrors: true,
  });
  const viewerContext = await environment.browser.newContext({
    viewport: PHONE,
    deviceScaleFactor: 2,
    ignoreHTTPSErrors: true,
  });
  try {
    // The creator goes live.
    const creator = await openPage(creatorContext, errors);
    const creatorCatchUps: string[] = [];
    creator.on('request', (request) => {
      if (/\/v1\/streams\/[^/]+\/events\?/.test(request.url()))
        creatorCatchUps.push(new URL(request.url()).searchParams.get('after') ?? '');
    });
    await signIn(creator, { name: 'Cora', age: 31, role: 'creator' });
    await creator.fill(byTestId('golive-title'), 'Evening jam');
    await creator.click(byTestId('golive-submit'));
    await waitForAttribute(creator, 'room-status', 'state', 'live');
    await waitForAttribute(creator, 'connection-status', 'state', 'connected');
    const streamId = await creator.getAttribute(byTestId('room'), 'data-stream-id');
    expect(streamId).toBeTruthy();
    const creatorConnections = environment.stack.gateway.openConnectionIds();
    expect(creatorConnections).toHaveLength(1);

    // The viewer buys 5,000 coins: the checkout says plainly that coins are final, then pays
    // through the local payments stand-in.
    const viewer = await openPage(viewerContext, errors);
    expect(await unnamedControls(viewer)).toEqual([]);
    await signIn(viewer, { name: 'Vic', age: 25, role: 'viewer' });
    await viewer.click(byTestId('package-coins_5000'));
    await viewer.waitForSelector(`${byTestId('checkout-dialog')}[open]`);
    expect(await viewer.textContent(byTestId('checkout-notice'))).toMatch(
      /cannot be transferred.*or refunded once bought/,
    );
    expect(await viewer.textContent(byTestId('checkout-summary'))).toContain('5,000 coins for $55.99');
    await viewer.screenshot({ path: join(SCREENSHOTS, 'viewer-checkout.png') });
    await viewer.click(byTestId('checkout-pay'));
    await waitForValue(viewer, 'wallet-coins', 5000);
    await viewer.waitForSelector(`${byTestId('checkout-dialog')}:not([open])`, { state: 'attached' });
    await viewer.waitForSelector(`${byTestId('history-item')}[data-type="recharge"]`, { state: 'attached' });

    // The viewer joins the creator's stream from the list of live streams.
    await viewer.click(`${byTestId('join-stream')}[data-stream-id="${streamId}"]`);
    await waitForAttribute(viewer, 'connection-status', 'state', 'connected');
    // Both pages also subscribed to the room's Event API channel through Amplify's events client.
    await waitForAttribute(viewer, 'connection-status', 'channel', 'subscribed');
    await waitForAttribute(creator, 'connection-status', 'channel', 'subscribed');

    // The creator's connection vanishes: its page must reconnect and catch up on what it missed.
    const [dropped] = creatorConnections;
    if (!dropped) throw new Error('no creator connection');
    environment.stack.gateway.dropConnectionSilently(dropped);

    await sendGift(viewer, 'heart', 3);
    await waitForValue(viewer, 'wallet-coins', 4985);
    await sendGift(viewer, 'lion', 2);
    await waitForValue(viewer, 'wallet-coins', 2985);

    // A gift over the balance cannot be sent: its button is disabled and says what is missing.
    await viewer.fill(byTestId('gift-quantity'), '1');
    await viewer.waitForSelector(`${byTestId('gift-universe')}:disabled`);
    expect(await viewer.textContent(byTestId('gift-reason-universe'))).toBe('Needs 27,015 more coins');

    // Both pages show both gifts, in order, once each; the creator's diamonds arrived.
    await viewer.waitForFunction(
      (selector) => document.querySelectorAll(selector).length === 2,
      `${byTestId('gift-feed')} ${byTestId('gift-feed-item')}`,
    );
    await creator.waitForFunction(
      (selector) => document.querySelectorAll(selector).length === 2,
      `${byTestId('gift-feed')} ${byTestId('gift-feed-item')}`,
    );
    expect(await feedGiftIds(viewer)).toEqual(['lion', 'heart']);
    expect(await feedGiftIds(creator)).toEqual(['lion', 'heart']);
    // The frames came through the channel too (and were applied once each, by seq).
    await viewer.waitForFunction(
      (selector) => Number(document.querySelector<HTMLElement>(selector)?.dataset.channelFrames ?? 0) >= 1,
      byTestId('connection-status'),
    );
    await waitForValue(creator, 'wallet-diamonds', 2015);
    await waitForAttribute(creator, 'connection-status', 'state', 'connected');
    expect(environment.stack.gateway.openConnectionIds()).not.toContain(dropped);
    // It read the events route when it first joined and again after the reconnect.
    expect(creatorCatchUps.length).toBeGreaterThanOrEqual(2);

    // The leaderboard (it may lag the gifts by a few seconds) ranks the viewer.
    await creator.waitForSelector(`${byTestId('leaderboard-item')}[data-user-id="vic"][data-coins="2015"]`);
    await scrollToTop(creator, 'room');
    await creator.screenshot({ path: join(SCREENSHOTS, 'creator-room.png') });
    await viewer.waitForSelector(`${byTestId('leaderboard-item')}[data-user-id="vic"][data-coins="2015"]`);

    await sendGift(viewer, 'rose', 5);
    await waitForValue(viewer, 'wallet-coins', 2980);
    await scrollToTop(viewer, 'room');
    await viewer.waitForSelector(byTestId('gift-animation'));
    await viewer.screenshot({ path: join(SCREENSHOTS, 'viewer-room.png') });
    await waitForValue(creator, 'wallet-diamonds', 2020);

    // The creator links a payout account: onboarding opens in a new tab and completes there.
    const onboardingTab = creatorContext.waitForEvent('page');
    await creator.click(byTestId('payout-link'));
    const onboarding = await onboardingTab;
    await waitForAttribute(creator, 'payout-account-status', 'state', 'enabled');
    await onboarding.close();

    // A payout of 2,000 diamonds ($10.00) moves them to pending, then settles as paid.
    await creator.fill(byTestId('payout-diamonds'), '2000');
    await creator.click(byTestId('payout-submit'));
    await creator.waitForSelector(byTestId('payout-item'));
    await waitForAttribute(creator, 'payout-item', 'status', 'paid', PAYOUT_PAID_TIMEOUT_MS);
    expect(await creator.textContent(byTestId('payout-item'))).toContain('$10.00');
    await waitForValue(creator, 'wallet-diamonds', 20);
    await waitForValue(creator, 'wallet-pending', 0);
    await scrollToTop(creator, 'studio');
    await creator.screenshot({ path: join(SCREENSHOTS, 'creator-studio.png') });

    expect(await unnamedControls(viewer)).toEqual([]);
    expect(await unnamedControls(creator)).toEqual([]);

    // The creator ends the stream; the viewer's page says so.
    await creator.click(byTestId('end-stream'));
    await waitForAttribute(viewer, 'room-status', 'state', 'ended');
    await waitForValue(viewer, 'wallet-coins', 2980);

    expect(errors).toEqual([]);
  } finally {
    await Promise.all([creatorContext.close(), viewerContext.close()]);
  }
});
