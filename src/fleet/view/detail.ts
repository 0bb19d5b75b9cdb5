/**
 * The detail pane for one agent (Enter in the terminal view; the same facts on the web page's agent
 * panel): devices, targets with the last replug's downtime, the last 20 events, detection sources and
 * runtime facts. Pure, lines of plain text (the screen fits them to the width).
 */
import { printable } from '../table.js';
import type { AgentState } from '../types.js';
import { ago, duration } from './format.js';
import type { AgentJournal } from './journal.js';
import { toRow } from './model.js';

export interface DetailOptions {
  now: number;
  linkOk: (broker: string) => boolean;
  staleFactor?: number;
}

export function detailLines(a: AgentState, j: AgentJournal | undefined, o: DetailOptions): string[] {
  const row = toRow(a, j, {
    now: o.now,
    linkOk: o.linkOk,
    ...(o.staleFactor !== undefined ? { staleFactor: o.staleFactor } : {}),
  });
  const out: string[] = [];
  const seen = a.lastSeen ? ` · seen ${ago(o.now - a.lastSeen)}` : '';
  const stale =
    row.stale && row.stateTs !== null ? ` · STALE: newest state from ${ago(o.now - row.stateTs)}` : '';
  out.push(`agent ${a.agent} on ${a.broker} · ${row.liveness} s${row.session}${seen}${stale}`);
  out.push(...runtimeLines(a));
  out.push('', `targets (${row.targets.length}):`);
  for (const t of row.targets) {
    const down =
      t.downtime.downSince !== undefined
        ? `down for ${duration(o.now - t.downtime.downSince)}`
        : t.downtime.lastMs !== undefined
          ? `last replug down ${duration(t.downtime.lastMs)} (${ago(o.now - (t.downtime.lastUpAt ?? o.now))})`
          : 'no replug seen';
    // Three short lines rather than one long one: the pane must read on 80 columns.
    out.push(
      `  ${t.key}  ${t.current ? '' : 'last: '}${t.state} since ${ago(o.now - t.since)}${t.lastError ? ` · last error ${t.lastError}` : ''}`,
    );
    out.push(
      `    reconnects ${t.reconnects} (${t.ok} ok, ${t.failed} failed) · p50/p95 ${duration(t.p50Ms) || '-'}/${duration(t.p95Ms) || '-'}`,
    );
    out.push(`    ${down}`);
  }
  const devices = a.devices?.devices ?? [];
  out.push('', `devices (${a.devices ? a.devices.count : 'unknown'}):`);
  for (const d of devices.slice(0, 64)) {
    const name = [d.manufacturer, d.product].filter(Boolean).join(' ');
    out.push(
      `  ${d.vid}:${d.pid}  bus ${d.bus} addr ${d.address}${d.portPath ? ` port ${d.portPath}` : ''}${d.serial ? ` serial ${d.serial}` : ''}${name ? `  ${name}` : ''}`,
    );
  }
  if (devices.length > 64) out.push(`  … ${devices.length - 64} more`);
  out.push('', 'detection sources:', ...sourceLines(a));
  out.push('', ...healthLines(a));
  const events = [...(j?.events ?? [])].reverse();
  out.push('', `last ${events.length} events (newest first, seen while watching):`);
  for (const e of events) out.push(`  ${ago(o.now - e.ts).padEnd(8)} ${e.type.padEnd(19)} ${e.summary}`);
  return out.map(printable);
}

function runtimeLines(a: AgentState): string[] {
  const i = a.info;
  if (!i) return ['runtime: unknown (no info yet)'];
  const rt = i.runtime;
  return [
    `runtime: ${rt.kind}${rt.label ? ` (${rt.label})` : ''} · netns ${rt.netns} · ${rt.udev ? 'udev' : 'no udev'} · devfs ${rt.devfs} · userns ${rt.userns} · usb bus ${rt.usbBus ? 'visible' : 'absent'}`,
    `host ${i.host} · ${i.platform}/${i.arch} · node ${i.node} · replug ${i.version} · pid ${i.pid} · broker ${i.broker.embedded ? 'embedded' : 'external'} ${i.broker.url}`,
  ];
}

function sourceLines(a: AgentState): string[] {
  const counters = a.health && Object.keys(a.health.sources).length > 0 ? a.health.sources : a.detection;
  const names = new Set([...(a.info?.sources ?? []).map((s) => s.name), ...Object.keys(counters)]);
  if (names.size === 0) return ['  none reported'];
  return [...names].map((name) => {
    const s = a.info?.sources.find((x) => x.name === name);
    const c = counters[name as keyof typeof counters];
    const state = s ? `${s.state}${s.reason ? ` (${s.reason})` : ''}` : 'not in info';
    const figures = c
      ? ` · seen ${c.seen}, first ${c.first}, missed ${c.missed}, latency mean ${duration(c.meanLatencyMs) || '-'} max ${duration(c.maxLatencyMs) || '-'}`
      : '';
    return `  ${name.padEnd(7)} ${state}${figures}`;
  });
}

function healthLines(a: AgentState): string[] {
  const h = a.health;
  if (!h) return ['health: none yet'];
  const rss = h.memory.rssBytes === null ? '?' : `${Math.round(h.memory.rssBytes / 1048576)} MiB`;
  return [
    `health: up ${duration(h.uptimeS * 1000)} · rss ${rss} · queue ${h.queue.depth}/${h.queue.capacity}, dropped ${h.queue.dropped} · broker ${h.broker.connected ? 'connected' : 'disconnected'}, ${h.broker.reconnects} reconnects`,
  ];
}
