import { describe, expect, it } from 'vitest';
import { loadAgentConfig, sanitizeAgentId } from '../../src/config/agent.js';
import { ConfigError } from '../../src/errors.js';
import { isValidAgentId } from '../../src/mqtt/topics.js';

const world = { hostname: 'Pi-Kitchen.local' };

function problemsOf(argv: string[], env: Record<string, string> = {}): string[] {
  try {
    loadAgentConfig(argv, env, world);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadAgentConfig', () => {
  it('defaults: hostname as id, embedded broker on loopback 1883, all sources, 250 ms doubling to 5 s', () => {
    const c = loadAgentConfig([], {}, world);
    expect(c.id).toBe('pi-kitchen-local');
    expect(c.broker).toEqual({
      host: '127.0.0.1',
      port: 1883,
      allowAnonymous: false,
      users: undefined,
      limits: {},
    });
    expect(c.mqtt.url).toBeUndefined();
    expect(c.sources).toEqual(['devfs', 'sysfs', 'nusb', 'uevent']);
    expect(c.backoff).toEqual({ initialMs: 250, maxMs: 5000, factor: 2 });
    expect(c.targets).toEqual([]);
    expect(c.targetsMissing).toBe(true);
    expect(c.sysfsRoot).toBe('/sys');
    expect(c.devfsRoot).toBe('/dev');
  });

  it('takes repeatable hex targets, with serials that may contain colons', () => {
    const c = loadAgentConfig(['--target', '1209:0001', '-t', '0x0403:6001:A1:B2'], {}, world);
    expect(c.targets).toEqual([
      { vid: '1209', pid: '0001' },
      { vid: '0403', pid: '6001', serial: 'A1:B2' },
    ]);
    expect(c.targetsMissing).toBe(false);
  });

  it('reads REPLUG_TARGETS when no --target is given, and flags win over env', () => {
    expect(loadAgentConfig([], { REPLUG_TARGETS: '1209:0001, 0627:0001' }, world).targets).toHaveLength(2);
    expect(
      loadAgentConfig(['--target', '46f4:0001'], { REPLUG_TARGETS: '1209:0001' }, world).targets,
    ).toEqual([{ vid: '46f4', pid: '0001' }]);
  });

  it("accepts the seed's decimal TEST_VID/TEST_PID and prints them as unsigned hex", () => {
    // 34150 = 0x8566: the original tool printed this PID as -31386.
    const c = loadAgentConfig([], { TEST_VID: '4617', TEST_PID: '34150' }, world);
    expect(c.targets).toEqual([{ vid: '1209', pid: '8566' }]);
  });

  it('reports every problem at once, naming the flag or variable', () => {
    const problems = problemsOf(
      ['--target', 'zz:1', '--broker-port', '70000', '--log-level', 'loud', '--id', 'Bad_Id'],
      {
        REPLUG_RESCAN_INTERVAL_MS: 'soon',
      },
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('--target'),
        expect.stringContaining('--broker-port must be between 0 and 65535'),
        expect.stringContaining('--log-level must be one of'),
        expect.stringContaining('--id "Bad_Id"'),
        expect.stringContaining('REPLUG_RESCAN_INTERVAL_MS must be a whole number'),
      ]),
    );
    expect(problems).toHaveLength(5);
  });

  it('rejects out-of-range and malformed TEST_VID/TEST_PID, and one without the other', () => {
    expect(problemsOf([], { TEST_VID: '65536', TEST_PID: '-1' })).toEqual([
      'TEST_VID must be a decimal number from 0 to 65535, got "65536"',
      'TEST_PID must be a decimal number from 0 to 65535, got "-1"',
    ]);
    expect(problemsOf([], { TEST_VID: '4617' })).toEqual([
      'TEST_VID is set but TEST_PID is not; set both (decimal 0-65535)',
    ]);
  });

  it('rejects bad MQTT URLs with a line that shows the expected form', () => {
    expect(problemsOf(['--mqtt', 'http://broker:1883'])[0]).toContain('expected one of mqtt://');
    expect(problemsOf([], { REPLUG_MQTT_URL: 'not a url' })[0]).toMatch(
      /^REPLUG_MQTT_URL: "not a url" is not a URL/,
    );
  });

  it('rejects unknown flags and unknown sources', () => {
    expect(() => loadAgentConfig(['--frobnicate'], {}, world)).toThrow(/Unknown option '--frobnicate'/);
    expect(problemsOf(['--sources', 'devfs,udev'])[0]).toContain('unknown source "udev"');
  });

  it('refuses embedded-broker flags together with --mqtt, and a cert without a key', () => {
    const problems = problemsOf(['--mqtt', 'mqtt://h', '--broker-port', '1884', '--cert', 'c.pem']);
    expect(problems).toContain(
      '--broker-port/--broker-host configure the embedded broker, which --mqtt replaces; give one or the other',
    );
    expect(problems).toContain("--cert needs --key (the client certificate's private key)");
  });

  it("--broker-limit NAME=N (repeatable, a later one wins) or REPLUG_BROKER_LIMITS sets the embedded broker's limits", () => {
    const c = loadAgentConfig(
      [
        '--broker-limit',
        'retained-topics=50',
        '--broker-limit',
        'connecting=8',
        '--broker-limit',
        'connecting=9',
      ],
      { REPLUG_BROKER_LIMITS: 'packet-bytes=4096' },
      world,
    );
    expect(c.broker.limits).toEqual({ retainedTopics: 50, connecting: 9 });
    const fromEnv = loadAgentConfig(
      [],
      { REPLUG_BROKER_LIMITS: 'packet-bytes=4096, login-failures=3' },
      world,
    );
    expect(fromEnv.broker.limits).toEqual({ packetBytes: 4096, loginFailures: 3 });
  });

  it('refuses a bad --broker-limit name or value with the same words as `replug broker --limit`', () => {
    expect(problemsOf(['--broker-limit', 'retained=5'])).toEqual([
      expect.stringMatching(
        /^--broker-limit: unknown limit "retained" \(known: connect-bytes, .*retained-topics/,
      ),
    ]);
    expect(problemsOf(['--broker-limit', 'retained-topics=0'])).toEqual([
      '--broker-limit: retained-topics must be at least 1 count, got 0',
    ]);
    expect(problemsOf([], { REPLUG_BROKER_LIMITS: 'packet-bytes=lots' })).toEqual([
      'REPLUG_BROKER_LIMITS: packet-bytes needs a whole number, as in packet-bytes=1048576',
    ]);
  });

  it('refuses --broker-limit with --mqtt (that broker is not ours); the shared variable alone is ignored there', () => {
    expect(problemsOf(['--mqtt', 'mqtt://h', '--broker-limit', 'retained-topics=5'])).toEqual([
      '--broker-limit sets limits of the embedded broker, which --mqtt replaces; set them on that broker (`replug broker --limit`)',
    ]);
    const c = loadAgentConfig(['--mqtt', 'mqtt://h'], { REPLUG_BROKER_LIMITS: 'retained-topics=5' }, world);
    expect(c.mqtt.url).toBe('mqtt://h');
  });

  it('reads booleans from env with env-var and reports bad ones', () => {
    expect(loadAgentConfig([], { REPLUG_HOMEASSISTANT: 'true' }, world).homeassistant).toBe(true);
    expect(problemsOf([], { REPLUG_RELAY: 'maybe' })[0]).toContain('REPLUG_RELAY');
  });
});

describe('loadAgentConfig: one table, one URL parser, files, driver options', () => {
  it('takes tcp:// and ssl:// (Paho/Mosquitto spellings) as mqtt:// and mqtts://, which the client connects to', () => {
    expect(loadAgentConfig(['--mqtt', 'tcp://broker.lan:1884'], {}, world).mqtt.url).toBe(
      'mqtt://broker.lan:1884',
    );
    expect(loadAgentConfig([], { REPLUG_MQTT_URL: 'ssl://u:p@h' }, world).mqtt.url).toBe('mqtts://u:p@h');
  });

  it('names every missing file given by a flag or variable in one line each, at start', () => {
    let caught: unknown;
    try {
      loadAgentConfig(
        ['--broker-users', 'users', '--driver', 'd.mjs', '--cafile', '/pki/ca.pem'],
        { REPLUG_MQTT_CERT: '/pki/c.pem', REPLUG_MQTT_KEY: '/pki/k.pem' },
        { ...world, cwd: '/srv', fileState: (f) => (f === '/pki/k.pem' ? 'file' : 'missing') },
      );
    } catch (err) {
      caught = err;
    }
    expect((caught as ConfigError).problems).toEqual([
      '--driver: /srv/d.mjs: no such file',
      '--cafile: /pki/ca.pem: no such file',
      'REPLUG_MQTT_CERT: /pki/c.pem: no such file',
      '--broker-users: /srv/users: no such file',
    ]);
  });

  it('hands --driver-option K=V to the driver factory, and --probe-interval only when given', () => {
    const c = loadAgentConfig(['--driver-option', 'baud=115200', '--driver-option', 'x=a=b'], {}, world);
    expect(c.driverOptions).toEqual({ baud: '115200', x: 'a=b' });
    expect(c.probeIntervalMs).toBe(2000);
    const p = loadAgentConfig(
      [],
      { REPLUG_PROBE_INTERVAL_MS: '500', REPLUG_DRIVER_OPTIONS: 'a=1,b=2' },
      world,
    );
    expect(p.driverOptions).toEqual({ a: '1', b: '2', probeIntervalMs: 500 });
    expect(problemsOf(['--driver-option', 'nokey'])).toEqual(['--driver-option: "nokey" is not KEY=VALUE']);
  });

  it('a flag without its value is one line', () => {
    expect(problemsOf(['--target'])).toEqual(['--target needs a value (VID:PID[:SERIAL])']);
    expect(problemsOf(['--target', '--id', 'x'])).toEqual([
      '--target needs a value (VID:PID[:SERIAL]); for a value that starts with a dash, write --target=VALUE',
    ]);
  });
});

describe('sanitizeAgentId (the one hostname folding; topics.ts had a second)', () => {
  it('lowercases and folds anything outside [a-z0-9-] into a dash', () => {
    expect(sanitizeAgentId('Pi.Kitchen_01')).toBe('pi-kitchen-01');
    expect(sanitizeAgentId('--Host--')).toBe('host');
    expect(sanitizeAgentId('...')).toBe('replug');
    expect(isValidAgentId(sanitizeAgentId('ÜberPi #3'))).toBe(true);
  });
});
