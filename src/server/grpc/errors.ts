// Maps domain errors to gRPC statuses at the service boundary: a BerthError keeps its code,
// anything else becomes Unknown with its message.
import { type Code as ConnectCode, ConnectError } from "@connectrpc/connect";
import { codeOf, messageOf } from "../../pkg/errdefs/errdefs.js";

export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  return new ConnectError(messageOf(err), codeOf(err) as number as ConnectCode, undefined, undefined, err);
}

type AnyFn = (...args: never[]) => unknown;

/** Wraps every method of a service implementation so that thrown errors carry their code. */
export function withErrorCodes<T extends Record<string, AnyFn>>(impl: T): T {
  const out: Record<string, AnyFn> = {};
  for (const [name, fn] of Object.entries(impl)) {
    out[name] = (...args: never[]) => {
      let result: unknown;
      try {
        result = fn.apply(impl, args);
      } catch (err) {
        throw toConnectError(err);
      }
      if (result instanceof Promise) return result.catch((err) => Promise.reject(toConnectError(err)));
      if (result && typeof result === "object" && Symbol.asyncIterator in result) {
        return mapStreamErrors(result as AsyncIterable<unknown>);
      }
      return result;
    };
  }
  return out as T;
}

async function* mapStreamErrors<M>(stream: AsyncIterable<M>): AsyncIterable<M> {
  try {
    yield* stream;
  } catch (err) {
    throw toConnectError(err);
  }
}
