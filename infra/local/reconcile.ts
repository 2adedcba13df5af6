import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import * as z from 'zod';
import { reconcileLedger } from '../../shared/ops/reconcile';

/**
 * `npm run reconcile`: checks the books of a running stack. Locally it reads the endpoint the
 * running `npm start` wrote to .data/stack.json; against AWS, set LEDGER_TABLE (and AWS
 * credentials) and leave DYNAMODB_ENDPOINT unset. Exits 1 on any discrepancy.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const stackFile = z.object({ dynamoEndpoint: z.string(), ledgerTable: z.string() });

async function main(): Promise<void> {
  const dataDir = resolve(process.env.LOCAL_DATA_DIR ?? '.data');
  const file = resolve(dataDir, 'stack.json');
  let endpoint = process.env.DYNAMODB_ENDPOINT;
  let table = process.env.LEDGER_TABLE;
  if (table === undefined && existsSync(file)) {
    const local = stackFile.parse(JSON.parse(readFileSync(file, 'utf8')));
    endpoint = local.dynamoEndpoint;
    table = local.ledgerTable;
  }
  if (table === undefined) {
    process.stderr.write('Nothing to reconcile: start the local stack (npm start) or set LEDGER_TABLE.\n');
    process.exit(2);
  }
  const client = new DynamoDBClient({
    region: process.env.AWS_REGION ?? 'us-east-1',
    ...(endpoint && { endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }),
  });
  const report = await reconcileLedger(client, table);
  process.stdout.write(`${JSON.stringify(report.totals, null, 2)}\n`);
  if (report.ok) {
    process.stdout.write('Books balance: every equation holds and every wallet matches its entries.\n');
    return;
  }
  process.stdout.write(
    `${report.discrepancies.length} discrepancies:\n${report.discrepancies.map((line) => `  - ${line}`).join('\n')}\n`,
  );
  process.exit(1);
}

main().catch((error: unknown) => {
  process.stderr.write(`reconcile failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
