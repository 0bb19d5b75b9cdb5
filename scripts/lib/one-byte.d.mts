/** See one-byte.mjs. */
export function toOneByteSource(code: string): string;
