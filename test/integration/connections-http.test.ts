import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignedConnectionsApi } from '../../shared/adapters/connections-http';

/*
 * The @connections client that posts broadcast frames without the SDK's middleware: what it puts
 * on the wire (a SigV4-signed POST to <stage>/@connections/<id>, the bytes unchanged) and how it
 * names API Gateway's answers, against a real HTTP server.
 */

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

let server: Server;
let received: Received[] = [];
let answerStatus = 200;

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks),
      });
      response.writeHead(answerStatus, { 'content-type': 'application/json' });
      response.end(answerStatus === 200 ? '' : '{"message":"no"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  received = [];
  answerStatus = 200;
});

function api(): SignedConnectionsApi {
  const { port } = server.address() as AddressInfo;
  return new SignedConnectionsApi(`http://127.0.0.1:${port}/prod`, 'eu-west-1', async () => ({
    accessKeyId: 'AKIDEXAMPLE',
    secretAccessKey: 'secret',
    sessionToken: 'session-token',
  }));
}

describe('SignedConnectionsApi', () => {
  it('posts the bytes unchanged to <stage>/@connections/<id>, signed for execute-api in the region', async () => {
    const client = api();
    const frame = Buffer.from(JSON.stringify({ type: 'gift', seq: 7, note: 'é' }));
    await client.postToConnection('Abc=/+x', frame);
    client.destroy();

    expect(received).toHaveLength(1);
    const [post] = received as [Received];
    expect(post.method).toBe('POST');
    expect(post.url).toBe('/prod/@connections/Abc%3D%2F%2Bx');
    expect(post.body.equals(frame)).toBe(true);
    expect(post.headers['content-length']).toBe(String(frame.byteLength));
    expect(post.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/,
    );
    expect(post.headers['x-amz-security-token']).toBe('session-token');
    expect(post.headers['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
  });

  it('names API Gateway’s answers as the SDK does: 410 Gone, 429 throttled, 403, 5xx', async () => {
    const client = api();
    const nameOf = async (status: number) => {
      answerStatus = status;
      try {
        await client.postToConnection('c1', Buffer.from('{}'));
        return 'resolved';
      } catch (error) {
        return (error as Error).name;
      }
    };
    expect(await nameOf(410)).toBe('GoneException');
    expect(await nameOf(429)).toBe('LimitExceededException');
    expect(await nameOf(403)).toBe('ForbiddenException');
    expect(await nameOf(413)).toBe('PayloadTooLargeException');
    expect(await nameOf(502)).toBe('InternalServerErrorException');
    expect(await nameOf(204)).toBe('resolved');
    client.destroy();
    expect(received).toHaveLength(6);
  });

  it('reuses kept-alive sockets across posts', async () => {
    const client = api();
    const sockets = new Set<unknown>();
    server.on('connection', (socket) => sockets.add(socket));
    for (let post = 0; post < 20; post += 1) await client.postToConnection(`c${post}`, Buffer.from('{}'));
    client.destroy();
    server.removeAllListeners('connection');
    expect(received).toHaveLength(20);
    expect(sockets.size).toBe(1);
  });
});
