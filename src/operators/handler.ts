/**
 * `handler` turns a per-input function into an operator that can never
 * kill the pipeline: a ParseError drops the input and bumps the counter
 * named by its code; any other exception is a bug, counted under
 * `<scope>.internal-error` and logged at error level, and the stream goes
 * on. `emit` is bound once per subscription, not per input.
 */
import { Observable, type OperatorFunction } from 'rxjs';
import { ParseError } from '../protocols/errors.js';
import type { StackContext } from './context.js';

export function handler<T, R>(
  ctx: StackContext,
  scope: string,
  fn: (input: T, emit: (output: R) => void) => void,
): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      const emit = (output: R): void => subscriber.next(output);
      return source.subscribe({
        next: (input) => {
          try {
            fn(input, emit);
          } catch (err) {
            countFailure(ctx, scope, err);
          }
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
    });
}

export function countFailure(ctx: StackContext, scope: string, err: unknown): void {
  if (err instanceof ParseError) {
    ctx.counters.add(err.code);
    if (ctx.log.enabled('debug')) ctx.log.debug(`${scope}: dropped: ${err.message}`);
    return;
  }
  ctx.counters.add(`${scope}.internal-error`);
  ctx.log.error(`${scope}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
}
