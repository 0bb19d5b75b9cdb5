// The durable queue and the pump, wired as the publisher wires them, in a process of its own, so a test
// can run them as an unprivileged user (chmod means nothing to root). Driven over stdin, one command a
// line: `push N`, `stats`, `close`. Answers on stdout as JSON lines; the queue's log goes to stderr as
// JSON lines. argv: <build dir> <state dir> <broker url> <topic>.
import path from 'node:path';
import readline from 'node:readline';

const [buildDir, stateDir, url, topic] = process.argv.slice(2);
const load = (p) => import(path.join(buildDir, p));
const { DurableQueue } = await load('src/mqtt/queue.js');
const { EventPump } = await load('src/mqtt/pump.js');
const { eventDraft } = await load('src/mqtt/payloads.js');
const { systemClock } = await load('src/util/clock.js');
const { default: mqtt } = await import('mqtt');
const { pino } = await import('pino');

const log = pino({ level: 'debug' }, pino.destination(2));
const queue = await DurableQueue.open({
  dir: stateDir,
  clock: systemClock,
  retryMs: 200,
  fsyncIntervalMs: 50,
  log,
});
const client = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 100 });
await new Promise((resolve) => client.once('connect', resolve));
const pump = new EventPump(queue, systemClock, 16, () => undefined, { log });
queue.onPush(() => pump.pump());
pump.resume((ev) => client.publishAsync(topic, JSON.stringify(ev), { qos: 1 }));
const device = { key: 'serial:RO', vid: '1209', pid: '0001', serial: 'RO', bus: 1, address: 4 };
let attempt = 0;
const say = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
say({ ready: true, uid: process.getuid() });

for await (const line of readline.createInterface({ input: process.stdin })) {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === 'push') {
    for (let i = 0; i < Number(arg); i++)
      queue.push(
        eventDraft('reconnect.attempt', { target: '1209:0001', attempt: ++attempt, device }, Date.now()),
        3,
      );
    say({ pushed: attempt });
  } else if (cmd === 'stats') say({ stats: queue.stats(), fileLines: queue.fileLines });
  else if (cmd === 'close') {
    pump.reset();
    await client.endAsync(true);
    await queue.close();
    say({ closed: true });
    break;
  }
}
