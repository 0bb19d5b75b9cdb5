/**
 * The hashes libudev puts in its netlink header so subscribers can filter in the kernel (BPF) before
 * waking up. Both are reimplemented from their reference sources:
 * - MurmurHash2 by Austin Appleby (public domain), as systemd ships it in src/basic/MurmurHash2.c;
 * - `string_hash32` / `string_bloom64` from systemd's src/libsystemd/sd-device/device-monitor.c.
 */
import { endianness } from 'node:os';

const M = 0x5bd1e995;

/**
 * MurmurHash2 of `key` (UTF-8 bytes) with `seed`, exactly as the C reference computes it on this machine.
 * The reference reads each 4-byte block with `*(uint32_t *)data`, i.e. in host byte order ("It will not
 * produce the same results on little-endian and big-endian machines"). libudev's sender and its BPF filter
 * run on the same host, so we follow the host too; `littleEndian` is injectable for tests.
 */
export function murmurHash2(
  key: string | Uint8Array,
  seed = 0,
  littleEndian = endianness() === 'LE',
): number {
  const data = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  let len = data.length;
  let h = (seed ^ len) >>> 0;
  let i = 0;
  while (len >= 4) {
    const b0 = data[i]!;
    const b1 = data[i + 1]!;
    const b2 = data[i + 2]!;
    const b3 = data[i + 3]!;
    let k = littleEndian
      ? (b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)) >>> 0
      : ((b0 << 24) | (b1 << 16) | (b2 << 8) | b3) >>> 0;
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
    i += 4;
    len -= 4;
  }
  // The reference's switch falls through: 3 bytes mix data[2], data[1], data[0], then multiply once.
  if (len >= 3) h ^= data[i + 2]! << 16;
  if (len >= 2) h ^= data[i + 1]! << 8;
  if (len >= 1) {
    h ^= data[i]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h >>> 0;
}

/** device-monitor.c `string_hash32`: MurmurHash2 of the string without its NUL, seed 0. */
export function stringHash32(text: string): number {
  return murmurHash2(text, 0);
}

/**
 * device-monitor.c `string_bloom64`: four bit numbers (6 bits each) taken from the hash set four bits of
 * a 64-bit field. The sender ORs this over all tags; libudev's BPF tag filter checks hi and lo words.
 */
export function stringBloom64(text: string): bigint {
  const hash = stringHash32(text);
  let bits = 0n;
  for (const shift of [0, 6, 12, 18]) bits |= 1n << BigInt((hash >>> shift) & 63);
  return bits;
}

/** The bloom of a set of tags, split into the header's hi/lo words (0/0 when there are no tags). */
export function tagBloom(tags: Iterable<string>): { hi: number; lo: number } {
  let bits = 0n;
  for (const tag of tags) bits |= stringBloom64(tag);
  return { hi: Number(bits >> 32n), lo: Number(bits & 0xffffffffn) };
}
