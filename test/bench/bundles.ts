import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ESBUILD_MAIN_FIELDS, ESBUILD_TARGET } from '../../infra/constructs/app-function';
import { HTTP_ROUTES, QUEUE_CONSUMERS, SCHEDULES, WEBSOCKET_AUTHORIZER, WEBSOCKET_ROUTES } from '../../infra/routes';

/**
 * Bundles every cloud function the way the CDK construct does (esbuild, minified, CommonJS,
 * node22, the AWS SDK bundled) and measures the bytes and the time a fresh Node process takes
 * to import the bundle: the part of a cold start our code controls.
 */
export interface BundleFigure {
  name: string;
  bytes: number;
  initMs: number;
}

const REPO_ROOT = resolve(__dirname, '..', '..');
/** Imports per bundle, to take the median of a noisy measurement. */
const IMPORT_REPEATS = 5;

export function cloudFunctions(): Array<{ name: string; handler: string }> {
  return [
    ...HTTP_ROUTES.filter((route) => !route.localOnly).map((route) => ({ name: route.name, handler: route.handler })),
    ...WEBSOCKET_ROUTES.map((route) => ({ name: route.name, handler: route.handler })),
    { name: WEBSOCKET_AUTHORIZER.name, handler: WEBSOCKET_AUTHORIZER.handler },
    ...QUEUE_CONSUMERS.map((consumer) => ({ name: consumer.name, handler: consumer.handler })),
    ...SCHEDULES.map((schedule) => ({ name: schedule.name, handler: schedule.handler })),
  ];
}

export async function measureBundles(): Promise<BundleFigure[]> {
  const outDir = mkdtempSync(join(tmpdir(), 'bundles-'));
  const figures: BundleFigure[] = [];
  for (const fn of cloudFunctions()) {
    const outfile = join(outDir, `${fn.name}.js`);
    await build({
      entryPoints: [resolve(REPO_ROOT, fn.handler)],
      bundle: true,
      minify: true,
      sourcemap: false,
      platform: 'node',
      target: ESBUILD_TARGET,
      mainFields: ESBUILD_MAIN_FIELDS,
      format: 'cjs',
      outfile,
      logLevel: 'silent',
    });
    const probe = join(outDir, `${fn.name}.probe.js`);
    writeFileSync(
      probe,
      `const start = process.hrtime.bigint(); require(${JSON.stringify(outfile)}); process.stdout.write(String(Number(process.hrtime.bigint() - start) / 1e6));`,
    );
    const samples: number[] = [];
    for (let repeat = 0; repeat < IMPORT_REPEATS; repeat += 1) {
      const output = execFileSync(process.execPath, [probe], {
        env: { ...process.env, AWS_REGION: 'us-east-1', NODE_OPTIONS: '' },
        encoding: 'utf8',
      });
      samples.push(Number(output));
    }
    samples.sort((a, b) => a - b);
    figures.push({
      name: fn.name,
      bytes: statSync(outfile).size,
      initMs: Math.round((samples[Math.floor(samples.length / 2)] ?? 0) * 10) / 10,
    });
  }
  return figures;
}

if (require.main === module) {
  void measureBundles().then((figures) => {
    for (const figure of figures)
      process.stdout.write(`${figure.name.padEnd(28)} ${String(figure.bytes).padStart(9)} B  ${figure.initMs} ms\n`);
  });
}
