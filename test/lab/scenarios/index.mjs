// The scenarios `npm run test:lab` runs, in order. A scenario is
//   { name, runtimes: ['native' | 'container', ...], describe,
//     setup(ctx, st), cycle(ctx, st, i), check(ctx, st) -> [{ runtime, cycles, reconnects, ok, problems, ... }],
//     teardown(ctx, st) }
// where ctx is a LabContext (lib/context.mjs) on the booted VM and st is the scenario's own state object.
// Agent scenarios (replug agent natively and in the container, publishing to a broker in the VM, collected by
// `replug watch --json`) are added here the same way; see README.md.
import { agentScenarios } from './agent.mjs';
import { controlScenario } from './control.mjs';
import { detectScenario } from './detect.mjs';
import { equalScenario } from './equal.mjs';
import { floorScenario } from './floor.mjs';
import { gadgetScenario } from './gadget.mjs';
import { healScenario } from './heal.mjs';
import { recipesScenario } from './recipes.mjs';
import { relayScenarios } from './relay.mjs';

export function scenarios() {
  return [
    detectScenario('kbd'),
    detectScenario('storage'),
    detectScenario('serial'),
    gadgetScenario(),
    controlScenario('kbd'),
    // The "needs udevd" row of DESIGN.md's detection table, for libusb: natively, without udevd, it never
    // sees a replug either.
    controlScenario('kbd', { runtimes: ['native'], udevd: false, expect: { native: 'fail' } }),
    ...agentScenarios(),
    floorScenario(), // issue 17: the default driver's steps through usb@3 alone: the floor under `equal`
    equalScenario(), // issue 17: the agent vs the libusb control and the raw devfs watcher, same plugs and load
    ...relayScenarios(), // issue 7: replug relay on the real kernel
    recipesScenario(), // issue 16: each docker run recipe, doctor's prediction vs the measurement
    healScenario(), // issues 15 + 18: a FunctionFS device that wedges, healed by the ladder and over MQTT
  ];
}
