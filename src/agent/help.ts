export const agentHelp = `Usage: replug agent [options]

Watch USB devices, keep a restartable session to each target device across unplug/replug, and publish
device events, session states and reconnect outcomes to MQTT. With no --mqtt, an embedded broker is started.

Targets
  -t, --target VID:PID[:SERIAL]  device to keep a session with (hex as lsusb prints; repeatable)
                                 env REPLUG_TARGETS=1209:0001,0403:6001:A1B2
                                 legacy env TEST_VID / TEST_PID (decimal 0-65535); asked for on a TTY
      --driver FILE              session driver module (default: open, claim interface 0, GET_DESCRIPTOR)
                                 env REPLUG_DRIVER
      --detach-kernel-driver     let the default driver detach a kernel driver from interface 0
      --backoff-initial MS       first retry delay (250); doubles up to --backoff-max MS (5000)
      --probe-interval MS        liveness probe while up (2000; 0 = off)

Detection
      --sources LIST             devfs,sysfs,nusb,uevent (default: all that work here)  env REPLUG_SOURCES
      --sysfs-root DIR           sysfs root (/sys)   env REPLUG_SYSFS_ROOT
      --devfs-root DIR           devfs root (/dev)   env REPLUG_DEVFS_ROOT
      --rescan-interval MS       sysfs rescan period (1000)
      --settle MS                window for per-source detection reports (3000)
      --relay                    also run \`replug relay\` so libusb apps in this container see replugs

MQTT
      --id ID                    agent id, the topic level replug/<id>/ ([a-z0-9-]+; default: hostname)
      --runtime-label LABEL      shown by \`replug watch --compare\` (e.g. native, container)
      --mqtt URL                 publish to this broker (mqtt://, mqtts://, ws://, wss://) instead of the
                                 embedded one  env REPLUG_MQTT_URL
  -u, --username NAME            env REPLUG_MQTT_USERNAME
  -P, --password SECRET          env REPLUG_MQTT_PASSWORD (prefer the env var: argv is visible in ps)
      --cafile, --cert, --key    TLS files   env REPLUG_MQTT_CAFILE / _CERT / _KEY
      --homeassistant            publish Home Assistant MQTT discovery
      --state-dir DIR            boot counter and durable event queue (/var/lib/replug or
                                 ~/.local/state/replug)  env REPLUG_STATE_DIR
      --queue-capacity N         events kept while the broker is away (10000; oldest dropped first)
      --health-interval MS       health topic period (30000)

Embedded broker (when no --mqtt)
      --broker-host HOST         listen address (127.0.0.1)  env REPLUG_BROKER_HOST
      --broker-port PORT         listen port (1883)          env REPLUG_BROKER_PORT
      --broker-users FILE        users file (replug broker passwd); required beyond loopback
      --allow-anonymous          allow anonymous clients beyond loopback (not recommended)

Output
      --log-level LEVEL          fatal, error, warn, info, debug, trace, silent (info)
      --log-format FORMAT        auto (readable on a TTY, JSON otherwise), pretty, json
      --debug                    stack traces on errors
  -h, --help                     this text

Examples
  replug agent                                   # watch everything, embedded broker on 127.0.0.1:1883
  replug agent -t 1209:0001 --mqtt mqtt://central.local
  mosquitto_sub -h 127.0.0.1 -t 'replug/#' -v    # what the agent publishes
`;
