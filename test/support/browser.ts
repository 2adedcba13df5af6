import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import type { LocalStack } from '../../infra/local/stack';
import { startTestStack } from './local-stack';

/** Debian's chromium: `npx playwright install` cannot download on the machines this runs on. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** A headless Chromium for the browser tests, or a message that says how to get one. */
export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is missing at ${CHROMIUM}: the browser tests need Debian's chromium. ` +
        '`.ci/run` installs it (node .ci/ensure-chromium.mjs, as root); or run `sudo apt-get install -y chromium`, or set CHROMIUM_PATH.',
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/** What a browser test file shares: its local stack and its browser, set once the file's setup ran. */
export interface BrowserTestEnvironment {
  stack?: LocalStack;
  browser?: Browser;
}

/** Starts a local stack and a browser side by side before the file's tests, and stops both after them. */
export function useBrowserAndStack(): BrowserTestEnvironment {
  const environment: BrowserTestEnvironment = {};
  beforeAll(async () => {
    [environment.stack, environment.browser] = await Promise.all([startTestStack(), launchChromium()]);
  });
  afterAll(async () => {
    await environment.browser?.close();
    await environment.stack?.stop();
  });
  return environment;
}
