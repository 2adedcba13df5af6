import { createServer } from 'node:net';

/** Thrown when a local port is taken; `npm start` prints its message as the one line that says what to do. */
export class PortInUseError extends Error {
  constructor(
    readonly port: number,
    readonly variable: string,
  ) {
    super(`Port ${port} is already in use. Stop what is using it, or set ${variable} to a free port.`);
    this.name = 'PortInUseError';
  }
}

/** Asks the OS for a free loopback port (tests and the embedded engines use it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        reject(new Error('could not read the port the OS assigned'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** Fails with PortInUseError when `port` cannot be bound on loopback. */
export async function assertPortFree(port: number, variable: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'EADDRINUSE' ? new PortInUseError(port, variable) : error);
    });
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
}
