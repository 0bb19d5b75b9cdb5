/**
 * Shared by the deploy tests: where the repo's deploy files are, and the CI rule for external tools —
 * under CI=true a missing prerequisite fails the suite, elsewhere it skips it with the reason.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function repoFile(path: string): string {
  return readFileSync(join(repoRoot, path), 'utf8');
}

/** YAML with merge keys (`<<: *anchor`) resolved, as Docker Compose reads it. */
export function readYaml(path: string): unknown {
  return parseYaml(repoFile(path), { merge: true });
}

export function readYamlDocuments(path: string): unknown[] {
  return parseAllDocuments(repoFile(path)).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS();
  });
}

export function missingTools(tools: string[]): string[] {
  return tools.filter((tool) => {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
}

/**
 * describe() that needs external tools. Missing tools: skipped locally (named in the title), but under
 * CI=true the suite still runs and its beforeAll fails via assertTools, so CI cannot go green without them.
 */
export function describeWithTools(title: string, tools: string[], body: () => void): void {
  const missing = missingTools(tools);
  const skip = missing.length > 0 && process.env.CI !== 'true';
  const fullTitle = skip ? `${title} (skipped: missing ${missing.join(', ')})` : title;
  (skip ? describe.skip : describe)(fullTitle, body);
}

export function assertTools(tools: string[], aptPackages: string): void {
  const missing = missingTools(tools);
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(', ')}: install them (apt-get install -y ${aptPackages})`);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });
}
