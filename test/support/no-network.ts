import type { spawn } from 'node:child_process';
import net from 'node:net';

/**
 * The unit tier's promise, kept by the unit project's setup: no socket (no DynamoDB Local, no
 * gateway, no Stripe) and no child process (no JVM). A unit test that needs one belongs in
 * test/integration; this makes it fail at once, naming the reason, instead of quietly slowing
 * the tier or depending on the machine.
 */
function refuse(what: string): never {
  throw new Error(`test/unit opens no ${what}: move this test to test/integration (jest.config.js, the tiers)`);
}

net.Socket.prototype.connect = function connect(): never {
  return refuse('socket');
};
net.Server.prototype.listen = function listen(): never {
  return refuse('listening socket');
};
const childProcess = require('node:child_process') as { spawn: typeof spawn };
childProcess.spawn = (() => refuse('child process')) as typeof spawn;
