import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient, GetItemCommand, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { createHash } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { tracedStripeHttpClient } from '../../shared/adapters/stripe-client';
import { runInvocation } from '../../shared/observability/invocation';
import { instrumentAwsClient } from '../../shared/observability/tracing';

/**
 * Issue 16: DynamoDB, SQS, @connections and Stripe calls each reach X-Ray as their own
 * subsegment of the function's segment, through the daemon's UDP protocol, for sampled traces
 * only. A UDP socket stands in for the daemon; DynamoDB Local and a small HTTP server answer.
 */
const TRACE_ROOT = '1-5759e988-bd862e3fe1be46a994272793';
const FUNCTION_SEGMENT = '53995c3f42cd8ad8';
const WAIT_MS = 5_000;
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

let daemon: Socket;
let server: Server;
let serverUrl: string;
const datagrams: string[] = [];
const saved = { address: process.env.AWS_XRAY_DAEMON_ADDRESS, trace: process.env._X_AMZN_TRACE_ID };

/** SQS (JSON protocol, with the MD5 the SDK checks), @connections (200, no body), Stripe (a balance). */
function answer(
  body: string,
  target: string | undefined,
  path: string,
): { status: number; type: string; text: string } {
  if (target === 'AmazonSQS.SendMessage') {
    const messageBody = (JSON.parse(body) as { MessageBody: string }).MessageBody;
    return {
      status: 200,
      type: 'application/x-amz-json-1.0',
      text: JSON.stringify({ MessageId: 'm-1', MD5OfMessageBody: createHash('md5').update(messageBody).digest('hex') }),
    };
  }
  if (path.includes('@connections')) return { status: 200, type: 'application/json', text: '' };
  return {
    status: 200,
    type: 'application/json',
    text: JSON.stringify({ object: 'balance', available: [], pending: [], livemode: false }),
  };
}

beforeAll(async () => {
  daemon = createSocket('udp4');
  daemon.on('message', (message) => datagrams.push(message.toString('utf8')));
  await new Promise<void>((resolve) => daemon.bind(0, '127.0.0.1', resolve));
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const reply = answer(
        Buffer.concat(chunks).toString('utf8'),
        request.headers['x-amz-target'] as string | undefined,
        request.url ?? '',
      );
      response.writeHead(reply.status, { 'content-type': reply.type, 'x-amzn-requestid': 'req-1' });
      response.end(reply.text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.AWS_XRAY_DAEMON_ADDRESS = `127.0.0.1:${daemon.address().port}`;
});

afterAll(async () => {
  daemon.close();
  await new Promise((resolve) => server.close(resolve));
  for (const [name, value] of [
    ['AWS_XRAY_DAEMON_ADDRESS', saved.address],
    ['_X_AMZN_TRACE_ID', saved.trace],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

interface Subsegment {
  id: string;
  name: string;
  namespace: string;
  type: string;
  trace_id: string;
  parent_id: string;
  start_time: number;
  end_time: number;
  error?: boolean;
  fault?: boolean;
  aws?: Record<string, unknown>;
  http?: { request?: { method?: string; url?: string }; response?: { status?: number } };
}

function subsegments(): Subsegment[] {
  return datagrams.map((datagram) => {
    const [header, body] = datagram.split('\n');
    expect(header).toBe('{"format":"json","version":1}');
    return JSON.parse(body ?? '{}') as Subsegment;
  });
}

async function waitForSubsegments(count: number): Promise<Subsegment[]> {
  const deadline = Date.now() + WAIT_MS;
  while (datagrams.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  return subsegments();
}

async function callEverything(): Promise<void> {
  const dynamo = instrumentAwsClient(
    new DynamoDBClient({ endpoint: process.env.TEST_DYNAMODB_ENDPOINT, region: 'us-east-1', credentials }),
  );
  const sqs = instrumentAwsClient(new SQSClient({ endpoint: serverUrl, region: 'us-east-1', credentials }));
  const connections = instrumentAwsClient(
    new ApiGatewayManagementApiClient({ endpoint: `${serverUrl}/v1`, region: 'us-east-1', credentials }),
  );
  const url = new URL(serverUrl);
  const stripe = new Stripe('sk_test_tracing', {
    host: url.hostname,
    port: Number(url.port),
    protocol: 'http',
    maxNetworkRetries: 0,
    httpClient: tracedStripeHttpClient(Stripe.createNodeHttpClient()),
  });
  try {
    await dynamo.send(new ListTablesCommand({}));
    await expect(
      dynamo.send(new GetItemCommand({ TableName: 'no-such-table', Key: { pk: { S: 'x' } } })),
    ).rejects.toThrow();
    await sqs.send(
      new SendMessageCommand({ QueueUrl: `${serverUrl}/000000000000/payouts`, MessageBody: '{"payoutId":"po_1"}' }),
    );
    await connections.send(new PostToConnectionCommand({ ConnectionId: 'conn-1', Data: Buffer.from('{}') }));
    await stripe.balance.retrieve();
  } finally {
    dynamo.destroy();
    sqs.destroy();
    connections.destroy();
  }
}

const context = { functionName: 'PayoutWorker', awsRequestId: 'req-trace' } as Context;

test("a sampled invocation sends one subsegment per call, each parented to the function's segment", async () => {
  datagrams.length = 0;
  process.env._X_AMZN_TRACE_ID = `Root=${TRACE_ROOT};Parent=${FUNCTION_SEGMENT};Sampled=1`;
  await runInvocation(context, {}, callEverything);
  const sent = await waitForSubsegments(5);
  expect(sent.map((subsegment) => subsegment.name)).toEqual([
    'DynamoDB',
    'DynamoDB',
    'SQS',
    'ApiGatewayManagementApi',
    'Stripe',
  ]);
  for (const subsegment of sent) {
    expect(subsegment).toMatchObject({ type: 'subsegment', trace_id: TRACE_ROOT, parent_id: FUNCTION_SEGMENT });
    expect(subsegment.id).toMatch(/^[0-9a-f]{16}$/);
    expect(subsegment.end_time).toBeGreaterThanOrEqual(subsegment.start_time);
  }
  const [list, get, send, post, stripe] = sent;
  expect(list?.aws).toMatchObject({ operation: 'ListTables', region: 'us-east-1', retries: 0 });
  expect(list?.error).toBeUndefined();
  expect(get?.aws).toMatchObject({ operation: 'GetItem', table_name: 'no-such-table' });
  expect(get?.error).toBe(true);
  expect(send?.aws).toMatchObject({
    operation: 'SendMessage',
    queue_url: `${serverUrl}/000000000000/payouts`,
    request_id: 'req-1',
  });
  expect(post?.aws).toMatchObject({ operation: 'PostToConnection' });
  expect(stripe?.namespace).toBe('remote');
  expect(stripe?.http).toEqual({
    request: { method: 'GET', url: `http://${new URL(serverUrl).host}/v1/balance` },
    response: { status: 200 },
  });
});

test('an unsampled trace, or a call outside an invocation, sends nothing', async () => {
  datagrams.length = 0;
  process.env._X_AMZN_TRACE_ID = `Root=${TRACE_ROOT};Parent=${FUNCTION_SEGMENT};Sampled=0`;
  await runInvocation(context, {}, callEverything);
  process.env._X_AMZN_TRACE_ID = `Root=${TRACE_ROOT};Parent=${FUNCTION_SEGMENT};Sampled=1`;
  await callEverything();
  // A sampled call afterwards proves the daemon still listens: only it arrives.
  await runInvocation(context, {}, async () => {
    const dynamo = instrumentAwsClient(
      new DynamoDBClient({ endpoint: process.env.TEST_DYNAMODB_ENDPOINT, region: 'us-east-1', credentials }),
    );
    await dynamo.send(new ListTablesCommand({}));
    dynamo.destroy();
  });
  const sent = await waitForSubsegments(1);
  expect(sent.map((subsegment) => [subsegment.name, subsegment.aws?.operation])).toEqual([['DynamoDB', 'ListTables']]);
});
