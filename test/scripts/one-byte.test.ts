/**
 * The bundle's Latin-1 rewrite (scripts/lib/one-byte.mjs): the rewritten source means what the original
 * meant, in every place a character above U+00FF can stand in bundled code, and V8 can keep it one byte
 * per character.
 */
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { toOneByteSource } from '../../scripts/lib/one-byte.mjs';

/** Runs `expr` before and after the rewrite; both must give the same value. */
function same(expr: string): unknown {
  const rewritten = toOneByteSource(expr);
  expect([...rewritten].every((c) => (c.codePointAt(0) as number) <= 0xff)).toBe(true);
  const before = vm.runInNewContext(expr);
  const after = vm.runInNewContext(rewritten);
  expect(after).toEqual(before);
  return after;
}

describe('toOneByteSource', () => {
  it('keeps string and template literals, and comments, meaning the same', () => {
    expect(same('"a — b"')).toBe('a — b');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the source of a template literal, to be rewritten
    expect(same('const x = 3; /* never — here */ `${x}… more`')).toBe('3… more');
    expect(same('// a → b\n"ok"')).toBe('ok');
  });

  it('keeps regular expressions matching the same, astral characters included, with and without /u', () => {
    expect(same('/[–—]/.test("—") && !/[–—]/.test("-")')).toBe(true);
    expect(same('/^😀$/u.test("😀") && /^.$/u.test("😀")')).toBe(true);
    expect(same('/^😀$/.test("😀")')).toBe(true);
    expect(same('"😀".length')).toBe(2);
  });

  it('drops an identity escape before such a character, and keeps an escaped backslash', () => {
    expect(same('"\\—"')).toBe('—');
    expect(same('"\\\\—"')).toBe('\\—');
    expect(same('"\\\\\\—"')).toBe('\\—');
  });

  it('leaves Latin-1 and ASCII text as it is', () => {
    const code = 'const s = "café ± naïve"; s';
    expect(toOneByteSource(code)).toBe(code);
    expect(same(code)).toBe('café ± naïve');
  });
});
