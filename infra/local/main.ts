import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as z from 'zod';
import { JavaMissingError } from './dynamodb';
import { signLocalToken } from './issuer';
import { assertPortFree, PortInUseError } from './ports';
import { LOCAL_ISSUER, startLocalStack, type LocalStack } from './stack';

/**
 * `npm start`: the whole system on this machine. Every child (the DynamoDB Local JVM) stays in
 * this process group, so Ctrl-C, SIGTERM or a SIGKILL of the group ends all of it; data under
 * .data/ (LOCAL_DATA_DIR) survives, a crash included.
 */
const environment = z.object({
  LOCAL_HTTP_PORT: z.coerce.number().int().min(1).max(65535).default(3000),
  LOCAL_WS_PORT: z.coerce.number().int().min(1).max(65535).default(3001),
  LOCAL_EVENTS_PORT: z.coerce.number().int().min(1).max(65535).default(3002),
  LOCAL_DATA_DIR: z.string().min(1).default('.data'),
});

async function main(): Promise<void> {
  const env = environment.parse(process.env);
  await assertPortFree(env.LOCAL_HTTP_PORT, 'LOCAL_HTTP_PORT');
  await assertPortFree(env.LOCAL_WS_PORT, 'LOCAL_WS_PORT');
  await assertPortFree(env.LOCAL_EVENTS_PORT, 'LOCAL_EVENTS_PORT');
  const dataDir = resolve(env.LOCAL_DATA_DIR);
  const stack: LocalStack = await startLocalStack({
    dataDir,
    persistDynamo: true,
    httpPort: env.LOCAL_HTTP_PORT,
    wsPort: env.LOCAL_WS_PORT,
    eventsPort: env.LOCAL_EVENTS_PORT,
  });

  // Tools such as `npm run reconcile` find the running stack here.
  writeFileSync(
    resolve(dataDir, 'stack.json'),
    JSON.stringify({
      dynamoEndpoint: stack.dynamoEndpoint,
      ledgerTable: stack.tableNames.ledger,
      httpUrl: stack.httpUrl,
      wsUrl: stack.wsUrl,
    }),
  );

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${signal}: stopping the local stack...\n`);
    stack.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  const demoToken = await signLocalToken(resolve(dataDir, 'issuer', 'key.json'), LOCAL_ISSUER, {
    sub: 'demo-viewer',
    birthdate: '1990-01-01',
    country: 'US',
  });
  process.stdout.write(
    [
      '',
      'Live gifting, local stack: up.',
      `  Demo page       ${stack.httpUrl}/        (API docs: ${stack.httpUrl}/docs)`,
      `  HTTP API        ${stack.httpUrl}        (health: ${stack.httpUrl}/health)`,
      `  WebSocket API   ${stack.wsUrl}/?token=<JWT>&streamId=<id>`,
      `  Event API       ${stack.eventApi.httpUrl}   (AppSync Events stand-in: ${stack.eventApi.realtimeUrl}, channels /rooms/<id>;`,
      `                  certificate generated at start: open ${stack.eventApi.httpUrl.replace(/\/event$/, '/')} once to trust it)`,
      `  DynamoDB Local  ${stack.dynamoEndpoint}`,
      `  SQS (fauxqs)    ${stack.queues.endpoint}`,
      `  Payments        ${stack.payments.url}   (Stripe stand-in; webhook secret ${stack.webhookSecret})`,
      `  Data            ${dataDir}`,
      '',
      `Demo token (user demo-viewer, adult, US; more from POST ${stack.httpUrl}/dev/tokens):`,
      demoToken,
      '',
      `Try: curl -H "Authorization: Bearer $TOKEN" ${stack.httpUrl}/v1/wallet`,
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  if (error instanceof PortInUseError || error instanceof JavaMissingError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(
      `The local stack failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
  }
  process.exit(1);
});
