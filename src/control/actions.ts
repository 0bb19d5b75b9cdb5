/**
 * One handler per action. Each returns the response's `data` or throws an ActionError with a stable code;
 * the responder turns anything else into REPLUG_ACTION_FAILED. Handlers only read the request fields they
 * need, already type-checked by parseRequest.
 */
import { targetTopicKey } from '../usb/ids.js';
import { ActionError, RequestCodes } from './codes.js';
import type { Action, ControlRequest } from './contract.js';
import type { ControlPorts, ControlTarget } from './ports.js';

type Handler = (request: ControlRequest, ports: ControlPorts) => Promise<unknown> | unknown;

/** A target by its CLI key (`1209:0001:ABC`) or its topic key (`1209-0001-abc`). */
function findTarget(request: ControlRequest, ports: ControlPorts, action: string): ControlTarget {
  const wanted = request.target;
  if (wanted === undefined)
    throw new ActionError(
      RequestCodes.TARGET_REQUIRED,
      `${action} needs "target": a target key of this agent`,
    );
  const found = ports.targets().find((t) => t.key === wanted || t.topicKey === wanted);
  if (found) return found;
  const known = ports.targets().map((t) => t.key);
  throw new ActionError(
    RequestCodes.TARGET_UNKNOWN,
    `no target ${wanted} here; targets: ${known.length > 0 ? known.join(', ') : 'none'}`,
  );
}

/** A target key as its topic form, for targets this agent no longer has. */
function topicKeyOf(key: string): string | undefined {
  if (/^[0-9a-f]{4}-[0-9a-f]{4}(-[a-z0-9_]+)?$/.test(key)) return key;
  const m = /^([0-9a-f]{4}):([0-9a-f]{4})(?::(.+))?$/.exec(key);
  if (!m) return undefined;
  return targetTopicKey({ vid: m[1] as string, pid: m[2] as string, ...(m[3] ? { serial: m[3] } : {}) });
}

async function reset(request: ControlRequest, ports: ControlPorts): Promise<unknown> {
  const target = findTarget(request, ports, 'reset');
  if (!ports.heal)
    throw new ActionError(RequestCodes.HEAL_UNAVAILABLE, 'this agent runs no recovery ladder (heal)');
  const result = await ports.heal.run(target.key, request.step);
  const data = { target: target.key, step: result.step, outcome: result.outcome, ms: result.ms };
  if (result.outcome !== 'ok')
    throw new ActionError(
      RequestCodes.RESET_FAILED,
      `${target.key}: ${result.step} ended ${result.outcome} after ${result.ms} ms`,
      data,
    );
  return data;
}

async function restart(request: ControlRequest, ports: ControlPorts): Promise<unknown> {
  const target = findTarget(request, ports, 'restart');
  const out = await ports.restart(target.key);
  if (!out.restarted)
    throw new ActionError(
      RequestCodes.TARGET_ABSENT,
      `${target.key} has no device present (state ${out.state})`,
      {
        target: target.key,
        state: out.state,
      },
    );
  return { target: target.key, state: out.state };
}

async function forget(request: ControlRequest, ports: ControlPorts): Promise<unknown> {
  if (request.device !== undefined) {
    if (ports.presentDeviceKeys().includes(request.device))
      throw new ActionError(
        RequestCodes.DEVICE_PRESENT,
        `device ${request.device} is present; unplug it first`,
      );
    // A device has no retained topic of its own: once gone it is out of `devices` already.
    return { device: request.device, cleared: [] };
  }
  if (request.target === undefined)
    throw new ActionError(RequestCodes.TARGET_REQUIRED, 'forget needs "target" or "device"');
  const configured = ports.targets().find((t) => t.key === request.target || t.topicKey === request.target);
  if (configured)
    throw new ActionError(
      RequestCodes.TARGET_CONFIGURED,
      `${configured.key} is a target of this agent; take it out of the configuration first`,
    );
  const topicKey = topicKeyOf(request.target);
  if (!topicKey)
    throw new ActionError(
      RequestCodes.INVALID,
      `"${request.target}" is not a target key (vvvv:pppp[:SERIAL])`,
    );
  return { target: request.target, ...(await ports.forgetTarget(topicKey)) };
}

export const HANDLERS: Record<Action, Handler> = {
  republish: (_r, ports) => ({ topics: ports.republish() }),
  rescan: (_r, ports) => ports.rescan(),
  reset,
  restart,
  doctor: (_r, ports) => ports.doctor(),
  list: (_r, ports) => ports.list(),
  forget,
};
