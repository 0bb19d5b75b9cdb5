/**
 * The agent side of the contract, without MQTT: a delivered request in, the publishes that answer it out.
 * The commands feature (src/agent/features/commands.ts) feeds it from the agent's client; tests and the
 * simulated agents of test/control feed it from their own clients, so every agent answers the same way.
 *
 * Order of checks: not for us -> ignored; retained -> refused; payload (size, JSON, types, age) -> refused;
 * transaction already acted on -> no answer at all (it was answered the first time); unknown action ->
 * refused; then the action, whose failure is an error response, never an exception.
 */
import type { Clock } from '../util/clock.js';
import { HANDLERS } from './actions.js';
import { ActionError, RequestCodes } from './codes.js';
import {
  type ControlResponse,
  controlTopics,
  DEFAULT_MAX_AGE_MS,
  errorResponse,
  FLEET,
  isAction,
  okResponse,
  parseRequest,
  parseRequestTopic,
  type Transaction,
} from './contract.js';
import type { ControlPorts } from './ports.js';
import { DEFAULT_TRANSACTION_MEMORY, TransactionMemory } from './transactions.js';

export interface DeliveredRequest {
  topic: string;
  payload: Buffer;
  retain: boolean;
  /** MQTT 5 Response Topic and Correlation Data, when the request carried them. */
  responseTopic?: string | undefined;
  correlationData?: Buffer | undefined;
}

export interface ResponsePublish {
  topic: string;
  payload: string;
  response: ControlResponse;
  correlationData?: Buffer;
}

export interface ResponderOptions {
  agent: string;
  ports: ControlPorts;
  clock: Pick<Clock, 'now'>;
  maxAgeMs?: number;
  transactionMemory?: number;
  /** Actions running at once; past it a request is refused with REPLUG_REQUEST_BUSY. Default 8. */
  maxInFlight?: number;
  /** A request was refused or replayed: for the agent's log. */
  onRefused?: (what: { action: string; code: string; message: string }) => void;
}

export type Outcome =
  | { kind: 'ignored' }
  | { kind: 'replayed'; action: string; transaction: Transaction }
  | { kind: 'answered'; action: string; publishes: ResponsePublish[] };

export class Responder {
  private readonly memory: TransactionMemory;
  private readonly maxAgeMs: number;
  private inFlight = 0;

  constructor(private readonly options: ResponderOptions) {
    this.memory = new TransactionMemory(options.transactionMemory ?? DEFAULT_TRANSACTION_MEMORY);
    this.maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  }

  async handle(delivered: DeliveredRequest): Promise<Outcome> {
    const parsedTopic = parseRequestTopic(delivered.topic);
    if (!parsedTopic || (parsedTopic.to !== this.options.agent && parsedTopic.to !== FLEET))
      return { kind: 'ignored' };
    const { action } = parsedTopic;
    const now = () => this.options.clock.now();
    const answer = (response: ControlResponse): Outcome => {
      if (response.error) this.options.onRefused?.({ action, ...response.error });
      return { kind: 'answered', action, publishes: this.publishes(action, response, delivered) };
    };
    if (delivered.retain)
      return answer(
        errorResponse(
          RequestCodes.RETAINED,
          'a retained request is refused: it would fire on every subscribe',
          now(),
        ),
      );
    const parsed = parseRequest(delivered.payload, now(), this.maxAgeMs);
    if (!parsed.ok) return answer(errorResponse(parsed.code, parsed.message, now(), parsed.transaction));
    const { request } = parsed;
    const tx = request.transaction;
    if (tx !== undefined && !this.memory.admit(tx)) return { kind: 'replayed', action, transaction: tx };
    if (!isAction(action))
      return answer(errorResponse(RequestCodes.UNKNOWN_ACTION, `unknown action "${action}"`, now(), tx));
    // A flood of doctor or rescan requests must not pile up work on a Pi: refuse past the bound.
    if (this.inFlight >= (this.options.maxInFlight ?? 8))
      return answer(
        errorResponse(
          RequestCodes.BUSY,
          `${this.inFlight} requests are being acted on; try again`,
          now(),
          tx,
        ),
      );
    this.inFlight++;
    try {
      const data = await HANDLERS[action](request, this.options.ports);
      return answer(okResponse(data, now(), tx));
    } catch (err) {
      if (err instanceof ActionError)
        return answer(errorResponse(err.code, err.message, now(), tx, err.data));
      const message = err instanceof Error ? err.message : String(err);
      return answer(errorResponse(RequestCodes.ACTION_FAILED, `${action} failed: ${message}`, now(), tx));
    } finally {
      this.inFlight--;
    }
  }

  /**
   * Always the agent's own response topic; also the MQTT 5 Response Topic when it lies under that same
   * `replug/<id>/response/` (a broker's ACL lets an agent write only its own root, and an agent must not be
   * made to publish elsewhere on an open broker). Both carry the Correlation Data.
   */
  private publishes(
    action: string,
    response: ControlResponse,
    delivered: DeliveredRequest,
  ): ResponsePublish[] {
    const payload = JSON.stringify(response);
    const cd = delivered.correlationData ? { correlationData: delivered.correlationData } : {};
    const own = controlTopics.response(this.options.agent, action);
    const out: ResponsePublish[] = [{ topic: own, payload, response, ...cd }];
    const rt = delivered.responseTopic;
    const mine = controlTopics.response(this.options.agent, '');
    if (rt && rt !== own && rt.startsWith(mine) && !/[+#]/.test(rt) && !rt.includes('\0') && rt.length <= 512)
      out.push({ topic: rt, payload, response, ...cd });
    return out;
  }
}
