import childProcess from 'node:child_process';
import net from 'node:net';

/**
 * The unit tier's promise, kept by the unit project's setup: no socket (no DynamoDB Local, no
 * gateway, no Stripe) and no child process (no JVM). A unit test that needs one belongs in
 * test/integration; this makes it fail at once, naming the reason, instead of quietly slowing
 * the tier or depending on the machine. Node's own modules are shared by every test file a jest
 * worker runs, so the originals come back after each unit file.
 */
function refuse(what: string): never {
  throw new Error(`test/unit opens no ${what}: move this test to test/integration (jest.config.js, the tiers)`);
}

const originals = {
  connect: net.Socket.prototype.connect,
  listen: net.Server.prototype.listen,
  spawn: childProcess.spawn,
};

net.Socket.prototype.connect = function connect(): never {
  return refuse('socket');
};
net.Server.prototype.listen = function listen(): never {
  return refuse('listening socket');
};
childProcess.spawn = (() => refuse('child process')) as typeof childProcess.spawn;

afterAll(() => {
  net.Socket.prototype.connect = originals.connect;
  net.Server.prototype.listen = originals.listen;
  childProcess.spawn = originals.spawn;
});
