/** `[HOST:]PORT` as --metrics and --http take it (no imports: the option tables read it). */
export interface Listen {
  host: string;
  port: number;
}

/** `9464`, `127.0.0.1:9464`, `0.0.0.0:9464`, `[::1]:9464`; an error line for anything else. */
export function parseListen(text: string, defaultHost = '127.0.0.1'): Listen | string {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65_535)
    return `"${text}" is not [HOST:]PORT (e.g. 9464 or 127.0.0.1:9464; port 0 picks a free one)`;
  const host = m[1] ? m[1].replace(/^\[|\]$/g, '') : defaultHost;
  return { host, port };
}
