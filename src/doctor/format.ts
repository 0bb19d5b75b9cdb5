/**
 * Renderings of facts and verdicts: the one-line summary the agent logs at start, the compact object for the
 * MQTT `info` topic, and doctor's human report.
 */
import type { RuntimeFacts } from './types.js';
import type { DoctorVerdict } from './verdict.js';

function devSummary(f: RuntimeFacts): string {
  const kind = f.dev.kind === 'unknown' ? 'unknown' : f.dev.kind === 'other' ? f.dev.fsType : f.dev.kind;
  switch (f.dev.busUsb) {
    case 'bind':
      return `${kind}+bind(/dev/bus/usb)`;
    case 'nodes':
      return `${kind}+nodes(${f.dev.nodes.length})`;
    case 'absent':
      return `${kind}+no-bus-usb`;
    default:
      return kind;
  }
}

function udevSummary(f: RuntimeFacts): string {
  return f.udev.control ? 'present' : f.udev.dataDir ? 'data-only' : 'absent';
}

/** e.g. `runtime=docker netns=own udev=absent dev=tmpfs+bind(/dev/bus/usb) cgroup=allowed userns=initial usb-bus=present` */
export function summarize(f: RuntimeFacts): string {
  return [
    `runtime=${f.runtime.kind}`,
    `netns=${f.netns.kind}`,
    `udev=${udevSummary(f)}`,
    `dev=${devSummary(f)}`,
    `cgroup=${f.cgroup.usbAccess}`,
    `userns=${f.userns.kind}`,
    `usb-bus=${f.usbBus.present ? 'present' : 'absent'}`,
    `uevents=${f.kernelUevents.reach}`,
  ].join(' ');
}

/** JSON-able runtime facts for the retained MQTT `info` topic (stable keys; dashboards group by them). */
export interface RuntimeInfo {
  runtime: RuntimeFacts['runtime']['kind'];
  netns: RuntimeFacts['netns']['kind'];
  udev: 'present' | 'data-only' | 'absent';
  devfs: RuntimeFacts['dev']['kind'];
  busUsb: RuntimeFacts['dev']['busUsb'];
  cgroupUsb: RuntimeFacts['cgroup']['usbAccess'];
  userns: RuntimeFacts['userns']['kind'];
  usbBus: boolean;
  kernelUevents: RuntimeFacts['kernelUevents']['reach'];
  kernel: string;
}

export function runtimeInfo(f: RuntimeFacts): RuntimeInfo {
  return {
    runtime: f.runtime.kind,
    netns: f.netns.kind,
    udev: udevSummary(f) as RuntimeInfo['udev'],
    devfs: f.dev.kind,
    busUsb: f.dev.busUsb,
    cgroupUsb: f.cgroup.usbAccess,
    userns: f.userns.kind,
    usbBus: f.usbBus.present,
    kernelUevents: f.kernelUevents.reach,
    kernel: f.kernel,
  };
}

const MARK: Record<string, string> = { yes: 'yes', no: 'NO', partial: 'PARTIAL', unknown: 'unknown' };

function factLines(title: string, value: string, evidence: readonly string[]): string[] {
  return [`  ${title.padEnd(16)} ${value}`, ...evidence.map((e) => `  ${''.padEnd(16)}   - ${e}`)];
}

export function formatReport(f: RuntimeFacts, v: DoctorVerdict): string {
  const lines: string[] = ['replug doctor', '', `Summary: ${summarize(f)}`, '', 'Facts:'];
  lines.push(...factLines('kernel', f.kernel, []));
  lines.push(
    ...factLines('runtime', `${f.runtime.kind} (${f.runtime.confidence} confidence)`, f.runtime.evidence),
  );
  lines.push(
    ...factLines(
      'network ns',
      `${f.netns.kind} (${f.netns.confidence} confidence)${f.netns.interfaces.length ? `; interfaces: ${f.netns.interfaces.join(', ')}` : ''}`,
      f.netns.evidence,
    ),
  );
  lines.push(...factLines('udev', udevSummary(f), f.udev.evidence));
  lines.push(...factLines('/dev', devSummary(f), f.dev.evidence));
  lines.push(...factLines('cgroup devices', `usb ${f.cgroup.usbAccess}`, f.cgroup.evidence));
  lines.push(...factLines('user ns', f.userns.kind, f.userns.evidence));
  lines.push(...factLines('usb bus', f.usbBus.present ? 'present' : 'absent', f.usbBus.evidence));
  lines.push(...factLines('kernel uevents', f.kernelUevents.reach, [f.kernelUevents.why]));
  lines.push('', 'Detection sources:');
  for (const s of v.sources) {
    lines.push(`  ${MARK[s.works]?.padEnd(8)} ${s.label}`);
    lines.push(`           ${s.why}`);
    s.fix.forEach((fix, i) => {
      lines.push(`           ${i === 0 ? 'fix:' : 'or: '} ${fix}`);
    });
  }
  if (v.relayRecommended) {
    lines.push('', 'Recommended: `replug relay` (kernel uevents arrive here, udev broadcasts do not).');
  }
  lines.push('', `Verdict: ${v.overall}`);
  return lines.join('\n');
}
