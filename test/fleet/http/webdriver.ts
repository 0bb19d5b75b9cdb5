/**
 * A minimal W3C WebDriver client over fetch, driving Debian's chromedriver + headless Chromium: enough
 * for the dashboard suite (open a page, run a script, resize, screenshot) without a browser-automation
 * dependency.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMEDRIVER = '/usr/bin/chromedriver';

export function browserAvailable(): boolean {
  return (
    spawnSync(CHROMEDRIVER, ['--version'], { stdio: 'ignore' }).status === 0 &&
    spawnSync(CHROMIUM, ['--version'], { stdio: 'ignore' }).status === 0
  );
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

export class Browser {
  private constructor(
    private readonly driver: ChildProcess,
    private readonly base: string,
    private readonly session: string,
  ) {}

  static async start(): Promise<Browser> {
    const port = await freePort();
    const driver = spawn(CHROMEDRIVER, [`--port=${port}`, '--allowed-ips=127.0.0.1'], { stdio: 'ignore' });
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ok = await fetch(`${base}/status`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error('chromedriver did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    const res = await call(base, 'POST', '/session', {
      capabilities: {
        alwaysMatch: {
          browserName: 'chrome',
          'goog:chromeOptions': {
            binary: CHROMIUM,
            args: [
              '--headless=new',
              '--no-sandbox',
              '--disable-gpu',
              '--disable-dev-shm-usage',
              '--window-size=1280,900',
            ],
          },
        },
      },
    });
    return new Browser(driver, base, (res as { sessionId: string }).sessionId);
  }

  private cmd(method: string, path: string, body?: unknown): Promise<unknown> {
    return call(this.base, method, `/session/${this.session}${path}`, body);
  }

  open(url: string): Promise<unknown> {
    return this.cmd('POST', '/url', { url });
  }

  run<T>(script: string, ...args: unknown[]): Promise<T> {
    return this.cmd('POST', '/execute/sync', { script, args }) as Promise<T>;
  }

  resize(width: number, height: number): Promise<unknown> {
    return this.cmd('POST', '/window/rect', { width, height });
  }

  async screenshot(): Promise<Buffer> {
    return Buffer.from((await this.cmd('GET', '/screenshot')) as string, 'base64');
  }

  async close(): Promise<void> {
    await this.cmd('DELETE', '').catch(() => undefined);
    this.driver.kill('SIGTERM');
  }
}

async function call(base: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await r.json()) as { value: unknown };
  if (!r.ok) throw new Error(`webdriver ${method} ${path}: ${JSON.stringify(json.value).slice(0, 300)}`);
  // W3C: every answer is {value}; a new session's value carries its sessionId.
  return json.value;
}
