/**
 * Rewrites JavaScript source so that every character fits in Latin-1 (scripts/bundle.mjs, issue 17
 * footprint). V8 keeps each module's source text for lazy compilation, and stores it two bytes per
 * character as soon as one character is above U+00FF: one em dash in a comment doubled the 157 KB
 * after-online chunk to a 306 KB string, pino's "–" did the same to the log chunk.
 *
 * Each UTF-16 code unit above U+00FF becomes a `\uXXXX` escape, which means the same character in string
 * literals, template literals, regular expressions (an astral character becomes its surrogate pair, one
 * code point under /u, the same two units without it) and comments. A backslash right before such a
 * character is an identity escape (`"\—"` is "—"), so it is dropped rather than escaped again. Not safe
 * for `String.raw` over such characters (the raw text changes) or astral identifiers; bundled code has
 * neither, and the bundle test runs the result.
 */
export function toOneByteSource(code) {
  // No /u flag: the class matches single code units, surrogate halves included.
  return code.replace(/(\\*)([\u0100-\uffff])/g, (_, slashes, ch) => {
    const unit = `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
    const kept = slashes.length % 2 === 1 ? slashes.slice(1) : slashes;
    return kept + unit;
  });
}
