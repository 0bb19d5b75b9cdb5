/**
 * The embedded Aedes broker (no --mqtt): listens where --broker-host/--broker-port say, keeps retained
 * state under the state dir, and tells the user how to watch it. Its errors are worded for the agent's
 * flags here, at the boundary: src/broker does not know which command runs it.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { type RunningBroker, startBroker } from '../broker/broker.js';
import { rehint } from '../cli/hints.js';
import type { AgentConfig } from '../config/agent.js';
import { ErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';
import { clientId } from '../mqtt/connect.js';
import type { Clock } from '../util/clock.js';

/**
 * Closes the embedded broker once the agent's own client has left it (bounded). Closing it while our clean
 * DISCONNECT is still unread made the broker publish the agent's will (`offline` without `reason`) over the
 * `offline stopped` just sent, and its will cleanup then ran after the store was closed.
 */
export async function closeEmbeddedBroker(
  broker: RunningBroker,
  agent: string,
  clock: Clock,
  boundMs = 500,
): Promise<void> {
  const id = clientId(agent);
  const present = () =>
    Boolean((broker.aedes as unknown as { clients: Record<string, unknown> }).clients[id]);
  if (present()) {
    await new Promise<void>((resolve) => {
      const done = () => {
        broker.aedes.off('clientDisconnect', onGone);
        clock.clearTimeout(timer);
        resolve();
      };
      const onGone = () => {
        if (!present()) done();
      };
      const timer = clock.setTimeout(done, boundMs);
      broker.aedes.on('clientDisconnect', onGone);
    });
  }
  await broker.close();
}

export async function startEmbeddedBroker(
  config: AgentConfig,
  stateDir: string,
  log: Logger,
): Promise<RunningBroker> {
  // Issue 11: the agent logs in to its own broker with a one-time credential made here and never written
  // anywhere: its username is its id, so it gets exactly an agent's rights and its client id
  // `replug-<id>` is reserved for it (no other client can take it over and publish its will).
  const localAgent = { username: config.id, password: randomBytes(24).toString('base64url') };
  const broker = await startBroker({
    localAgent,
    host: config.broker.host,
    port: config.broker.port,
    allowAnonymous: config.broker.allowAnonymous,
    usersFile: config.broker.users,
    limits: config.broker.limits,
    persistenceDir: join(stateDir, 'broker'),
    log: log.child({ module: 'broker' }),
  }).catch((err: unknown) => {
    throw rehint(err, ErrorCodes.BROKER_PORT_IN_USE, (e) => {
      const url = e.details?.url;
      return `${url ? `another broker is probably running there: use it with --mqtt ${url}, or ` : ''}choose another port with --broker-port`;
    });
  });
  const subHost = broker.address.host === '0.0.0.0' ? '127.0.0.1' : broker.address.host;
  log.info(
    `see what the agent publishes: mosquitto_sub -h ${subHost} -p ${broker.address.port} -t 'replug/#' -v`,
  );
  return broker;
}
