// .ci/run's step before npm test: makes sure Debian's Chromium is present for the browser test,
// installing it when missing (CI runs as root on a fresh machine; `npx playwright install` cannot
// download here). npm test itself installs no OS package.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (existsSync(CHROMIUM) || process.env.SKIP_BROWSER_INSTALL === 'true') process.exit(0);
if (typeof process.getuid === 'function' && process.getuid() !== 0) {
  console.error(`Chromium is missing at ${CHROMIUM}; install it with: sudo apt-get install -y chromium`);
  process.exit(0);
}
console.log('Installing Debian chromium for the browser test...');
try {
  execFileSync('apt-get', ['update'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
} catch (error) {
  console.error(
    'Installing chromium failed; the browser test will report it.',
    error instanceof Error ? error.message : error,
  );
}
