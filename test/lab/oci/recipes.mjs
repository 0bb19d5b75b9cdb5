// The `docker run` recipes whose OCI specs the lab's containers are made from (issue 16). `docker` is what a
// user types after `docker run` (minus the image and command); sources on the host that this machine lacks
// (there is no /dev/bus/usb on a build machine) are bound from stand-ins and written back as the real paths
// in the fixtures (see README.md in this directory). `daemon`: dockerd options the recipe needs (a daemon-wide
// setting such as --userns-remap), so it runs against a dockerd of its own.
export const RECIPES = [
  {
    name: 'privileged',
    about: "the seed's: --privileged -v /dev/bus/usb:/dev/bus/usb (own network namespace)",
    docker: ['--privileged', '-v', '{{USB}}:/dev/bus/usb', '--network', 'none'],
  },
  {
    name: 'cgroup-rule',
    about: "replug's recommended, non-root with plugdev (README, Dockerfile): -v /dev/bus/usb + c 189:* rmw",
    docker: [
      '-v',
      '{{USB}}:/dev/bus/usb',
      '--device-cgroup-rule=c 189:* rmw',
      '--user',
      '10001:10001',
      '--group-add',
      '46',
      '--network',
      'none',
    ],
  },
  {
    name: 'device-node',
    about: 'one snapshot node: --device /dev/bus/usb/001/002',
    docker: ['--device', '{{NODE}}:/dev/bus/usb/001/002', '--network', 'none'],
  },
  {
    name: 'hostnet-udev',
    about:
      "the host's network and udev: --net=host -v /run/udev:/run/udev:ro (+ the bus and its cgroup rule)",
    docker: [
      '--network',
      'host',
      '-v',
      '{{USB}}:/dev/bus/usb',
      '-v',
      '{{UDEV}}:/run/udev:ro',
      '--device-cgroup-rule=c 189:* rmw',
    ],
  },
  {
    name: 'userns',
    about:
      "replug's recommended bind and cgroup rule under a user namespace (rootless-like): a dockerd with --userns-remap=default",
    docker: ['-v', '{{USB}}:/dev/bus/usb', '--device-cgroup-rule=c 189:* rmw', '--network', 'none'],
    // A daemon-wide option: this recipe gets a dockerd of its own.
    daemon: ['--userns-remap=default'],
  },
  {
    name: 'app',
    about:
      'the app container of the relay recipe (root, README line): -v /dev/bus/usb + c 189:* rmw, /run/udev a volume shared with the sidecar',
    docker: [
      '-v',
      '{{USB}}:/dev/bus/usb',
      '--device-cgroup-rule=c 189:* rmw',
      '-v',
      'replug-udev:/run/udev',
      '--network',
      'none',
    ],
    keepRunning: true,
  },
  {
    name: 'relay-sidecar',
    about: "docs/relay.md's sidecar: --network container:APP --cap-add NET_ADMIN -v replug-udev:/run/udev",
    docker: ['--network', 'container:{{APP}}', '--cap-add', 'NET_ADMIN', '-v', 'replug-udev:/run/udev'],
  },
];
