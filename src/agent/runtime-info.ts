/** The doctor's runtime facts in the shape of the retained `info` payload's `runtime` object. */
import type { RuntimeInfo } from '../doctor/index.js';
import type { RuntimeFacts as InfoRuntime } from '../mqtt/payloads.js';

export function infoRuntime(info: RuntimeInfo, label: string | undefined): InfoRuntime {
  return {
    kind: info.runtime,
    ...(label ? { label } : {}),
    netns: info.netns,
    udev: info.udev === 'present',
    devfs: info.devfs,
    usbBusBind: info.busUsb === 'bind' || info.busUsb === 'live',
    userns: info.userns === 'own' ? 'user' : info.userns,
    usbBus: info.usbBus,
  };
}
