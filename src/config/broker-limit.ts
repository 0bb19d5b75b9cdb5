/**
 * The `NAME=N` option kind for the broker's abuse limits (issue 11), shared by `replug broker --limit` and
 * `replug agent --broker-limit` so both accept, refuse and word the same input; the table of names,
 * defaults and minimums is src/broker/guard/limits.ts.
 */
import { type BrokerLimits, parseLimit } from '../broker/guard/limits.js';
import { type Kind, OptionProblem } from '../cli/kinds.js';

/** `name=value` -> one limit (guard/limits.ts holds the table; docs/broker.md explains each). */
export const limitKind: Kind<{ key: keyof BrokerLimits; value: number }> = {
  metavar: 'NAME=N',
  parse(text) {
    const out = parseLimit(text);
    if ('problem' in out) throw new OptionProblem(out.problem, true);
    return out;
  },
};

/** The variable both commands read, comma-separated like every repeatable option's variable. */
export const LIMITS_ENV = 'REPLUG_BROKER_LIMITS';
