/** The target's facts as the environment of an action's command (issue 15; docs/heal.md). */
import type { UsbDevice } from '../usb/types.js';
import type { ActionTrigger } from './events.js';

export function actionEnv(
  target: string,
  trigger: ActionTrigger,
  device: UsbDevice | undefined,
): Record<string, string> {
  const env: Record<string, string> = { REPLUG_TARGET: target, REPLUG_EVENT: trigger };
  const [vid = '', pid = ''] = target.split(':');
  env.REPLUG_VID = device?.vid ?? vid;
  env.REPLUG_PID = device?.pid ?? pid;
  if (device?.serial !== undefined) env.REPLUG_SERIAL = device.serial;
  if (device) {
    env.REPLUG_BUS = String(device.bus);
    env.REPLUG_ADDRESS = String(device.address);
  }
  if (device?.portPath !== undefined) env.REPLUG_PORT = device.portPath;
  if (device?.devNode !== undefined) env.REPLUG_DEVNODE = device.devNode;
  return env;
}
