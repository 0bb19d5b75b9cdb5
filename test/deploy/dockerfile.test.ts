/**
 * The Dockerfile's promises (issue 6), checked on the parsed file (dockerfile-ast, the parser behind the
 * VS Code Docker language server) rather than by grepping text: stages, base, user, healthcheck, labels.
 */
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { describe, expect, it } from 'vitest';
import { repoFile } from './support.js';

const dockerfile = DockerfileParser.parse(repoFile('Dockerfile'));
const instructions = dockerfile.getInstructions();

/** Instructions grouped by stage (each FROM opens one). */
function stages(): { from: Instruction; body: Instruction[] }[] {
  const out: { from: Instruction; body: Instruction[] }[] = [];
  for (const ins of instructions) {
    if (ins.getKeyword() === 'FROM') out.push({ from: ins, body: [] });
    else out.at(-1)?.body.push(ins);
  }
  return out;
}

/** Expands ${ARG} in a FROM with the defaults of the ARGs declared before the first FROM. */
function resolveImage(text: string): string {
  const defaults = new Map<string, string>();
  for (const arg of dockerfile.getInitialARGs()) {
    const property = arg.getProperty();
    if (property) defaults.set(property.getName(), property.getValue() ?? '');
  }
  return text.replace(/\$\{?(\w+)\}?/g, (_, name: string) => defaults.get(name) ?? `\${${name}}`);
}

/** `--name=value` flags of COPY, HEALTHCHECK, FROM (dockerfile-ast keeps them apart from the arguments). */
function flagsOf(ins: Instruction): Record<string, string> {
  const flags = (
    ins as unknown as { getFlags?(): { getName(): string; getValue(): string | null }[] }
  ).getFlags?.();
  return Object.fromEntries((flags ?? []).map((f) => [f.getName(), f.getValue() ?? '']));
}

const all = stages();
const final = all.at(-1)!;
const finalOf = (keyword: string) => final.body.filter((i) => i.getKeyword() === keyword);

describe('Dockerfile', () => {
  it('parses without problems and is multi-stage (build, prod deps, runtime)', () => {
    expect(all.length).toBeGreaterThanOrEqual(2);
    const names = all.map((s) => s.from.getArguments().at(-1)?.getValue());
    expect(names).toEqual(['build', 'deps', 'runtime']);
  });

  it('builds in a stage that runs npm ci and the TypeScript build', () => {
    const build = all[0]!.body.map((i) => i.getArgumentsContent() ?? '').join('\n');
    expect(build).toMatch(/npm ci\b/);
    expect(build).toMatch(/npm run build/);
  });

  it('prunes to production dependencies for the target platform', () => {
    const deps = all.find((s) => s.from.getArguments().at(-1)?.getValue() === 'deps')!;
    expect(deps.body.map((i) => i.getArgumentsContent()).join('\n')).toMatch(/npm ci --omit=dev/);
    // The usb binaries are per platform: this stage must not be pinned to the build host's platform.
    expect(deps.from.getArgumentsContent()).not.toMatch(/BUILDPLATFORM/);
  });

  it('bases the final image on a Node LTS slim Debian (glibc) image', () => {
    const image = resolveImage(final.from.getArguments()[0]!.getValue());
    expect(image).toMatch(/^(docker\.io\/library\/)?node:(22|24)(\.\d+)*-(bookworm|trixie)-slim$/);
  });

  it('documents the three platforms the usb prebuilds cover', () => {
    const text = repoFile('Dockerfile');
    for (const platform of ['linux/amd64', 'linux/arm64', 'linux/arm/v7']) expect(text).toContain(platform);
    const lock = JSON.parse(repoFile('package-lock.json')) as { packages: Record<string, unknown> };
    for (const pkg of ['usb-linux-x64-gnu', 'usb-linux-arm64-gnu', 'usb-linux-arm-gnueabihf']) {
      expect(Object.keys(lock.packages)).toContain(`node_modules/@node-usb/${pkg}`);
    }
  });

  it('runs as a non-root user in the final stage', () => {
    const users = finalOf('USER');
    expect(users.length).toBeGreaterThan(0);
    const user = users.at(-1)!.getArgumentsContent()!.split(':')[0]!;
    expect(['root', '0']).not.toContain(user);
    expect(user).toBe('replug');
    // No explicit group: with `user:group` runc drops the supplementary groups, plugdev among them.
    expect(users.at(-1)!.getArgumentsContent()).toBe('replug');
    // The user is created in plugdev so a host udev rule (GROUP="plugdev") grants USB access.
    const runs = finalOf('RUN')
      .map((i) => i.getArgumentsContent() ?? '')
      .join('\n');
    expect(runs).toMatch(/useradd[^\n]*--groups plugdev/);
  });

  it('has a HEALTHCHECK in exec form with sane timings', () => {
    const checks = finalOf('HEALTHCHECK');
    expect(checks).toHaveLength(1);
    const flags = flagsOf(checks[0]!);
    expect(flags.interval).toMatch(/^\d+s$/);
    expect(flags.timeout).toMatch(/^\d+s$/);
    expect(Number.parseInt(flags.timeout!, 10)).toBeLessThan(Number.parseInt(flags.interval!, 10));
    expect(checks[0]!.getArgumentsContent()).toBe('CMD ["node", "/opt/replug/healthcheck.mjs"]');
    const copies = finalOf('COPY').map((i) => i.getArgumentsContent());
    expect(copies).toContain('deploy/docker/healthcheck.mjs ./healthcheck.mjs');
  });

  it('carries OCI labels', () => {
    const labels = new Map<string, string>();
    for (const ins of finalOf('LABEL')) {
      for (const p of (
        ins as unknown as { getProperties(): { getName(): string; getValue(): string | null }[] }
      ).getProperties()) {
        labels.set(p.getName(), p.getValue() ?? '');
      }
    }
    for (const key of ['title', 'description', 'licenses', 'version', 'revision', 'created', 'base.name']) {
      expect(labels.has(`org.opencontainers.image.${key}`), key).toBe(true);
    }
  });

  it('installs no build tools in the final stage', () => {
    const runs = finalOf('RUN')
      .map((i) => i.getArgumentsContent() ?? '')
      .join('\n');
    expect(runs).not.toMatch(/apt-get|apk add|build-essential|python3?\b|\bmake\b|g\+\+|gcc|node-gyp/);
    // Only compiled output and pruned node_modules come from the earlier stages.
    const fromStages = finalOf('COPY')
      .filter((i) => flagsOf(i).from)
      .map((i) => `${flagsOf(i).from}: ${i.getArgumentsContent()}`);
    expect(fromStages).toEqual(['deps: /src/node_modules ./node_modules', 'build: /src/dist ./dist']);
  });

  it('runs `replug agent` by default through the replug entrypoint', () => {
    expect(finalOf('ENTRYPOINT').at(-1)?.getArgumentsContent()).toBe('["replug"]');
    expect(finalOf('CMD').at(-1)?.getArgumentsContent()).toBe('["agent"]');
  });

  it('keeps the build context small with an allow-list .dockerignore', () => {
    const ignore = repoFile('.dockerignore').split('\n');
    expect(ignore).toContain('*');
    for (const path of ['!package.json', '!package-lock.json', '!src/', '!broker/', '!docs/schemas/'])
      expect(ignore).toContain(path);
  });

  it('ships the payload schemas beside dist, where findSchemaDir looks for them', () => {
    // Without them the agent's journal check and watch's payload checks threw in the container.
    const copies = finalOf('COPY').map((c) => c.getArgumentsContent());
    expect(copies).toContain('docs/schemas ./docs/schemas');
    const buildCopies = all[0]!.body.filter((i) => i.getKeyword() === 'COPY');
    expect(buildCopies.map((c) => c.getArgumentsContent())).toContain('docs/schemas ./docs/schemas');
  });
});
