/** Fake ControlPorts for the responder's tests and the simulated agents: records every call. */
import type { ControlPorts, HealService } from '../../src/control/ports.js';

export interface FakePorts extends ControlPorts {
  calls: string[];
  present: string[];
}

export function fakePorts(heal?: HealService): FakePorts {
  const calls: string[] = [];
  const present = ['serial:LAB1'];
  return {
    calls,
    present,
    targets: () => [{ key: '1209:0001:LAB1', topicKey: '1209-0001-lab1' }],
    republish: () => {
      calls.push('republish');
      return 5;
    },
    rescan: async () => {
      calls.push('rescan');
      return { sources: ['sysfs'], devices: 1 };
    },
    restart: async (key) => {
      calls.push(`restart ${key}`);
      return { restarted: true, state: 'up' };
    },
    doctor: async () => {
      calls.push('doctor');
      return { summary: 'runtime=native' };
    },
    list: () => {
      calls.push('list');
      return { devices: [{ key: 'serial:LAB1' }], count: 1 };
    },
    presentDeviceKeys: () => present,
    forgetTarget: async (topicKey) => {
      calls.push(`forget ${topicKey}`);
      return { cleared: [`replug/a/target/${topicKey}/state`] };
    },
    heal,
  };
}
