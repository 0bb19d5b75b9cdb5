/**
 * `replug doctor`'s heal section (issue 15): which recovery ladder steps can work here, what each needs,
 * and the fix for the rest. The same check the agent runs at start with --heal (src/heal/permissions.ts).
 */
import { healCapabilities, type StepCapability } from '../heal/permissions.js';
import type { DoctorRoots } from './types.js';

export async function healSection(roots: Pick<DoctorRoots, 'sys' | 'dev'>): Promise<StepCapability[]> {
  return healCapabilities({ sys: roots.sys, dev: roots.dev });
}

export function formatHealSection(caps: readonly StepCapability[]): string {
  const lines = ['Heal steps (the agent option heal, docs/heal.md):'];
  for (const c of caps) {
    lines.push(`  ${c.ok ? 'ok  ' : 'no  '} ${c.step.padEnd(11)} needs ${c.needs}`);
    if (!c.ok) lines.push(`         why: ${c.reason}`, `         fix: ${c.fix}`);
  }
  lines.push('  port-power reaches VBUS only on hubs that switch port power (docs/heal.md lists which).');
  return lines.join('\n');
}
