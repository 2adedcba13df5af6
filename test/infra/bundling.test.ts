import { App, type CfnElement, Stack } from 'aws-cdk-lib';
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cdkJsonContext } from '../../infra/app';
import { AppFunction, ESBUILD_MAIN_FIELDS, ESBUILD_TARGET, PROJECT_ROOT } from '../../infra/constructs/app-function';
import {
  cloudHttpRoutes,
  HTTP_ROUTES,
  QUEUE_CONSUMERS,
  SCHEDULES,
  WEBSOCKET_AUTHORIZER,
  WEBSOCKET_ROUTES,
} from '../../infra/routes';

/**
 * Real bundling, as `cdk synth` does it: the local esbuild, with Docker made unusable so that a
 * fall-back to Docker bundling would fail this test. Packaging every function through CDK takes
 * about a minute on a shared machine (`npm run synth` does that); here one handler of each kind is
 * packaged, chosen from the route table (a JWT route, a route that talks to Stripe, the WebSocket
 * authorizer, a queue consumer and a schedule), and every cloud handler's import graph is checked
 * with one in-memory esbuild run.
 */
const BUNDLE_TIMEOUT_MS = 240_000;
/** A Lambda bundle above a few MB costs cold-start time; ours are about 0.5-1.5 MB minified. */
const MAX_BUNDLE_BYTES = 3 * 1024 * 1024;
/** Minified output keeps only the line breaks inside template literals: thousands of characters a line. */
const MIN_MINIFIED_CHARS_PER_LINE = 500;

const candidates = [
  cloudHttpRoutes().find((route) => route.auth === 'jwt'),
  cloudHttpRoutes().find((route) => route.access.stripe),
  WEBSOCKET_AUTHORIZER,
  QUEUE_CONSUMERS[0],
  SCHEDULES[0],
].flatMap(
  (candidate): Array<{ name: string; handler: string }> =>
    candidate ? [{ name: candidate.name, handler: candidate.handler }] : [],
);
const selected = candidates.filter(
  (candidate, index) => candidates.findIndex((other) => other.handler === candidate.handler) === index,
);

/** Enough configuration for every handler's module scope to load (values are never used). */
const LOAD_ENVIRONMENT = {
  AWS_REGION: 'eu-west-1',
  LEDGER_TABLE: 'ledger',
  CONNECTIONS_TABLE: 'connections',
  JWT_ISSUER: 'https://issuer.example.com',
  JWT_AUDIENCE: 'audience',
  STRIPE_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:stripe',
  WS_MANAGEMENT_ENDPOINT: 'https://example.execute-api.eu-west-1.amazonaws.com/v1',
  PAYOUTS_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/payouts',
  GIFT_EVENTS_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/gift-events.fifo',
};

let outdir: string;
const bundles = new Map<string, string>();
const previousDocker = process.env.CDK_DOCKER;

beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), 'infra-bundling-'));
  // CDK runs `$CDK_DOCKER` for Docker bundling: a path that does not exist turns any attempt into an error.
  process.env.CDK_DOCKER = join(outdir, 'no-docker-here');
  const app = new App({ context: cdkJsonContext(), outdir });
  const stack = new Stack(app, 'BundlingProbe');
  const functions = selected.map((candidate) => ({
    candidate,
    fn: new AppFunction(stack, candidate.name, { handler: candidate.handler, description: candidate.name }),
  }));
  const template = app.synth().getStackByName(stack.stackName).template as {
    Resources: Record<string, { Properties: { Code: { S3Key: string } } }>;
  };
  for (const { candidate, fn } of functions) {
    const id = stack.getLogicalId(fn.function.node.defaultChild as CfnElement);
    const key = template.Resources[id]?.Properties.Code.S3Key ?? '';
    bundles.set(candidate.name, join(outdir, `asset.${key.replace(/\.zip$/, '')}`));
  }
}, BUNDLE_TIMEOUT_MS);

afterAll(() => {
  if (previousDocker === undefined) delete process.env.CDK_DOCKER;
  else process.env.CDK_DOCKER = previousDocker;
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

test('one handler of each kind is bundled', () => {
  expect(selected.length).toBeGreaterThanOrEqual(3);
  expect(bundles.size).toBe(selected.length);
});

test.each(selected.map((candidate) => [candidate.name, candidate.handler] as const))(
  '%s (%s): one minified CommonJS file with a source map, SDK inside, nothing local',
  (name, handler) => {
    const directory = bundles.get(name) ?? '';
    const file = join(directory, 'index.js');
    expect(existsSync(file)).toBe(true);
    const size = statSync(file).size;
    expect(size).toBeLessThan(MAX_BUNDLE_BYTES);
    const code = readFileSync(file, 'utf8');
    // Minified: lines run to thousands of characters (source runs to tens); the map is referenced.
    expect(size / code.split('\n').length).toBeGreaterThan(MIN_MINIFIED_CHARS_PER_LINE);
    expect(code).toMatch(/\/\/# sourceMappingURL=index\.js\.map\s*$/);
    const map = JSON.parse(readFileSync(join(directory, 'index.js.map'), 'utf8')) as {
      sources: string[];
      sourcesContent?: unknown;
    };
    expect(map.sourcesContent).toBeUndefined();
    expect(map.sources.some((source) => source.endsWith(handler))).toBe(true);
    expect(map.sources.filter((source) => /(^|\/)infra\/local\//.test(source))).toEqual([]);
    expect(map.sources.filter((source) => /functions\/http\/dev-/.test(source))).toEqual([]);
    // The AWS SDK is bundled (bundleAwsSDK), not taken from the runtime, wherever a handler uses it.
    const usesSdk = map.sources.some((source) => source.includes('@aws-sdk/'));
    if (usesSdk) expect(map.sources.some((source) => source.includes('node_modules/@aws-sdk/client-'))).toBe(true);
    // From the SDK's ES builds (ESBUILD_MAIN_FIELDS), which tree-shake, not its CommonJS ones.
    expect(map.sources.filter((source) => /node_modules\/@aws-sdk\/client-[^/]+\/dist-cjs\//.test(source))).toEqual([]);
    expect(code).not.toMatch(/require\(["'](@aws-sdk\/client-|@smithy\/)/);
  },
);

test.each(selected.map((candidate) => [candidate.name] as const))('%s loads under node and exports handler', (name) => {
  const file = join(bundles.get(name) ?? '', 'index.js');
  const probe = spawnSync(
    process.execPath,
    [
      '-e',
      `const m = require(${JSON.stringify(file)}); if (typeof m.handler !== 'function') { console.error('no handler export'); process.exit(2); }`,
    ],
    {
      cwd: outdir,
      env: { PATH: process.env.PATH ?? '', ...LOAD_ENVIRONMENT },
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  expect([
    probe.status,
    probe.stderr
      .split('\n')
      .filter(
        (line) =>
          line &&
          !/NodeVersionSupportWarning|node >=22|January 2027|upgrade to node|a\.co\/|trace-warnings|To continue receiving/.test(
            line,
          ),
      ),
  ]).toEqual([0, []]);
});

test("the JWT route's bundle answers a request without claims with the contract's 401", () => {
  // Loading is not running: this runs the handler's middleware, parsing and logging as bundled
  // (from the packages' ES builds), up to the answer, without any network call.
  const jwtRoute = selected[0];
  const file = join(bundles.get(jwtRoute?.name ?? '') ?? '', 'index.js');
  const event = {
    version: '2.0',
    routeKey: 'GET /probe',
    rawPath: '/probe',
    rawQueryString: '',
    headers: {},
    requestContext: {
      requestId: 'bundle-probe',
      http: { method: 'GET', path: '/probe' },
      authorizer: { jwt: { claims: {} } },
    },
    isBase64Encoded: false,
  };
  const probe = spawnSync(
    process.execPath,
    [
      '-e',
      `require(${JSON.stringify(file)}).handler(${JSON.stringify(event)}, { awsRequestId: 'probe', functionName: 'probe', getRemainingTimeInMillis: () => 3000 })` +
        '.then((answer) => process.stdout.write("\\n" + JSON.stringify(answer)))',
    ],
    { cwd: outdir, env: { PATH: process.env.PATH ?? '', ...LOAD_ENVIRONMENT }, encoding: 'utf8', timeout: 30_000 },
  );
  expect(probe.status).toBe(0);
  const answer = JSON.parse(probe.stdout.trim().split('\n').pop() ?? '{}') as { statusCode?: number; body?: string };
  expect(answer.statusCode).toBe(401);
  expect(JSON.parse(answer.body ?? '{}')).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.any(String) } });
});

test(
  'every cloud handler bundles for node22 as CommonJS, and none reaches local-only code',
  async () => {
    const handlers = [
      ...new Set(
        [...cloudHttpRoutes(), ...WEBSOCKET_ROUTES, WEBSOCKET_AUTHORIZER, ...QUEUE_CONSUMERS, ...SCHEDULES].map(
          (entry) => entry.handler,
        ),
      ),
    ];
    const localOnlyHandlers = HTTP_ROUTES.filter((route) => route.localOnly).map((route) => route.handler);
    // The same esbuild settings as AppFunction, without writing: only the import graph is inspected.
    const result = await build({
      entryPoints: handlers,
      absWorkingDir: PROJECT_ROOT,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: ESBUILD_TARGET,
      mainFields: ESBUILD_MAIN_FIELDS,
      write: false,
      metafile: true,
      outdir: join(outdir, 'import-graph'),
      logLevel: 'silent',
    });
    expect(result.errors).toEqual([]);
    const outputs = Object.values(result.metafile.outputs).filter((output) => output.entryPoint !== undefined);
    expect(outputs.map((output) => output.entryPoint).sort()).toEqual([...handlers].sort());
    for (const output of outputs) {
      const reached = Object.keys(output.inputs).filter(
        (input) => /(^|\/)infra\/local\//.test(input) || localOnlyHandlers.includes(input),
      );
      expect([output.entryPoint, reached]).toEqual([output.entryPoint, []]);
    }
  },
  BUNDLE_TIMEOUT_MS,
);

test('the target matches the runtime', () => {
  expect(ESBUILD_TARGET).toBe('node22');
  expect(existsSync(join(PROJECT_ROOT, 'package-lock.json'))).toBe(true);
});
