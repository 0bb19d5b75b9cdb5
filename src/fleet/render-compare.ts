/**
 * `--compare` as text: one row per target, one column group per runtime (native first), then one row per
 * detection source. Pure; figures come from compare.ts.
 */
import type { SourceName } from '../usb/types.js';
import type { Comparison, RuntimeSourceFigures, RuntimeTargetFigures } from './compare.js';
import { type Cell, type Column, fitLine, layoutTable, paint } from './table.js';

export interface CompareRenderOptions {
  width: number;
  color: boolean;
}

const SOURCES: readonly SourceName[] = ['devfs', 'sysfs', 'nusb', 'uevent'];

export function renderCompare(c: Comparison, o: CompareRenderOptions): string {
  const lines = [
    paint(`replug watch --compare · runtimes: ${c.runtimes.join(', ') || 'none'}`, 'bold', o.color),
  ];
  if (c.runtimes.length === 0)
    return [...lines, 'no agents with targets yet'].map((l) => fitLine(l, o.width)).join('\n');
  // Runtime columns get priority by order, so on a narrow terminal native and the first container stay.
  const runtimeCols = (p: number): Column[] =>
    c.runtimes.map((rt, i) => ({ header: rt, priority: p + i, min: 6, max: 34 }));
  const targetRows = c.targets.map((t): Cell[] => [
    { text: t.target },
    ...c.runtimes.map((rt) => targetCell(t.byRuntime[rt])),
  ]);
  lines.push(' reconnects: ok/count (success) p50/p95');
  lines.push(
    ...layoutTable(
      [{ header: 'TARGET', priority: 1, min: 9, max: 28 }, ...runtimeCols(2)],
      targetRows,
      o.width,
      o.color,
      2,
    ),
  );
  const used = SOURCES.filter((s) => c.runtimes.some((rt) => c.sources[rt]?.[s]));
  const sourceRows = used.map((s): Cell[] => [
    { text: s },
    ...c.runtimes.map((rt) => sourceCell(c.sources[rt]?.[s])),
  ]);
  lines.push(
    ' detection sources: agents active (unavailable) · seen/missed · mean/max latency behind the first',
  );
  lines.push(
    ...layoutTable([{ header: 'SOURCE', priority: 1 }, ...runtimeCols(2)], sourceRows, o.width, o.color, 2),
  );
  return lines.map((l) => fitLine(l, o.width)).join('\n');
}

export function targetCell(f: RuntimeTargetFigures | undefined): Cell {
  if (!f) return { text: '—', style: 'dim' };
  const rate =
    f.successRate === null ? 'no reconnects' : `${f.ok}/${f.count} (${Math.round(f.successRate * 100)}%)`;
  const mark = f.approx ? '≤' : '';
  const lat = f.p50Ms === null ? '' : ` ${mark}${f.p50Ms}/${mark}${f.p95Ms ?? '-'}ms`;
  const style = f.successRate === null ? 'dim' : f.failed > 0 ? (f.ok === 0 ? 'red' : 'yellow') : 'green';
  return { text: `${rate}${lat}`, style };
}

export function sourceCell(f: RuntimeSourceFigures | undefined): Cell {
  if (!f) return { text: '—', style: 'dim' };
  const worked = f.active > 0 && (f.seen > 0 || f.missed === 0);
  const avail = f.unavailable > 0 ? `${f.active} (${f.unavailable} unavail)` : `${f.active}`;
  const lat =
    f.meanLatencyMs === null ? '' : ` +${Math.round(f.meanLatencyMs)}/${Math.round(f.maxLatencyMs ?? 0)}ms`;
  return { text: `${avail} · ${f.seen}/${f.missed}${lat}`, style: worked ? 'green' : 'red' };
}
