/**
 * Feature `info`: the retained `info` topic (version, host, runtime facts, sources and their state,
 * targets, broker), published when the agent is ready and again whenever a source changes state.
 */
import { arch, platform } from 'node:os';
import type { InfoPayload } from '../../mqtt/payloads.js';
import { targetKey } from '../../usb/ids.js';
import type { SourceName } from '../../usb/types.js';
import type { Feature, FeatureContext } from '../features.js';
import { infoRuntime } from '../runtime-info.js';

function info(ctx: FeatureContext): Omit<InfoPayload, 'session' | 'ts'> {
  const { config, identity } = ctx;
  return {
    agent: identity.agent,
    version: identity.version,
    host: identity.hostname,
    arch: arch(),
    platform: platform(),
    node: process.version,
    pid: process.pid,
    runtime: infoRuntime(ctx.runtime.info, config.runtimeLabel),
    sources: Object.entries(ctx.watcher.sourceStatus()).map(([name, st]) => ({
      name: name as SourceName,
      state: st.state,
      ...(st.state === 'unavailable' ? { reason: st.reason, code: st.code } : {}),
    })),
    targets: config.targets.map(targetKey),
    broker: { embedded: ctx.broker.embedded, url: ctx.broker.url.replace(/\/\/[^@/]*@/, '//') },
  };
}

export const infoTopic = (): Feature => ({
  name: 'info',
  start(ctx) {
    const publish = () => ctx.publisher.setInfo(info(ctx));
    ctx.on('agent.ready', publish);
    ctx.on('source.status', publish);
  },
});
