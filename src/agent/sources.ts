/**
 * Which detection sources the agent runs. Every available path is used (DESIGN "never trust one path");
 * nusb and kernel uevents read the real machine, so on a fake tree (--sysfs-root other than /sys) they
 * would report devices that are not in the tree: they are left out there, and said so.
 */
import type { Logger } from '../log.js';
import { DevfsSource } from '../usb/sources/devfs.js';
import { NusbSource } from '../usb/sources/nusb.js';
import { SysfsSource } from '../usb/sources/sysfs.js';
import { UeventSource } from '../usb/sources/uevent.js';
import type { DeviceSource, SourceName } from '../usb/types.js';
import type { Clock } from '../util/clock.js';

export interface SourceConfig {
  sources: readonly SourceName[];
  sysfsRoot: string;
  devfsRoot: string;
  procRoot: string;
  rescanIntervalMs: number;
}

export function isRealTree(config: Pick<SourceConfig, 'sysfsRoot' | 'devfsRoot'>): boolean {
  return config.sysfsRoot.replace(/\/+$/, '') === '/sys' && config.devfsRoot.replace(/\/+$/, '') === '/dev';
}

export function createSources(config: SourceConfig, clock: Clock, log: Logger): DeviceSource[] {
  const real = isRealTree(config);
  const out: DeviceSource[] = [];
  for (const name of config.sources) {
    switch (name) {
      case 'devfs':
        out.push(new DevfsSource({ devfsRoot: config.devfsRoot, sysfsRoot: config.sysfsRoot, clock }));
        break;
      case 'sysfs':
        out.push(
          new SysfsSource({
            sysfsRoot: config.sysfsRoot,
            devfsRoot: config.devfsRoot,
            intervalMs: config.rescanIntervalMs,
            clock,
          }),
        );
        break;
      case 'nusb':
        if (real)
          out.push(new NusbSource({ sysfsRoot: config.sysfsRoot, devfsRoot: config.devfsRoot, clock }));
        else log.info('source nusb left out: it reads the real /sys, not the tree given with --sysfs-root');
        break;
      case 'uevent':
        if (real)
          out.push(
            new UeventSource({
              sysfsRoot: config.sysfsRoot,
              devRoot: config.devfsRoot,
              procRoot: config.procRoot,
              clock,
            }),
          );
        else
          log.info(
            'source uevent left out: kernel uevents describe the real machine, not the tree given with --sysfs-root',
          );
        break;
    }
  }
  return out;
}
