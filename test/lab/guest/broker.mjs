// A plain Aedes broker inside the VM for agent scenarios: both runtimes reach it without any traffic leaving
// the VM, over a unix socket on the shared rootfs (path sockets cross network namespaces; MQTT.js connects to
// `mqtt+unix:///var/lab/broker.sock`) and, optionally, TCP on the guest's side of a container's veth pair
// (container.sh with LAB_NET=N gives the container 10.99.N.2 and this side 10.99.N.1).
// Usage: node /lab/guest/broker.mjs [socketPath] [tcpHost:port ...]. Prints {"ready":...} once listening.
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';

const require = createRequire('/replug/package.json');
const { Aedes } = await import(require.resolve('aedes'));
const broker = await Aedes.createBroker();
const [socketPath = '/var/lab/broker.sock', ...tcp] = process.argv.slice(2);
const listening = [];

rmSync(socketPath, { force: true });
await new Promise((r) => createServer(broker.handle).listen(socketPath, r));
listening.push(`unix:${socketPath}`);
for (const hp of tcp) {
  const [host, port] = hp.split(':');
  await new Promise((r) => createServer(broker.handle).listen(Number(port), host, r));
  listening.push(`tcp:${hp}`);
}
// One line per publish only when asked (LAB_BROKER_LOG=1): no scenario reads them, and every line crosses the
// serial console, CPU on the one vCPU that the processes being measured share (`equal` prints who uses it).
if (process.env.LAB_BROKER_LOG === '1')
  broker.on('publish', (packet, client) => {
    if (client)
      console.log(
        JSON.stringify({
          t: Number(process.hrtime.bigint()) / 1e6,
          topic: packet.topic,
          bytes: packet.payload.length,
        }),
      );
  });
console.log(JSON.stringify({ ready: listening }));
