/**
 * `demux` splits one stream into routes by a numeric key (EtherType, IP
 * protocol) and merges what the routes emit back into one stream. Each
 * route is an ordinary operator, so a route can be replaced or wrapped by
 * user code. Inputs whose key has no route, or whose key cannot be read,
 * go to `unrouted` (which counts them). Completing the source completes
 * every route and the output.
 */
import { Observable, Subject, Subscription, type OperatorFunction } from 'rxjs';
import type { StackContext } from './context.js';
import { countFailure } from './handler.js';

export type Routes<T, R> = ReadonlyMap<number, OperatorFunction<T, R>>;

export function demux<T, R>(
  ctx: StackContext,
  scope: string,
  key: (input: T) => number,
  routes: Routes<T, R>,
  unrouted: (input: T, key: number) => void,
): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      const inputs = new Map<number, Subject<T>>();
      const subscription = new Subscription();
      for (const [k, route] of routes) {
        const input = new Subject<T>();
        inputs.set(k, input);
        subscription.add(
          route(input).subscribe({
            next: (r) => subscriber.next(r),
            error: (e) => subscriber.error(e),
          }),
        );
      }
      subscription.add(
        source.subscribe({
          next: (x) => {
            let k: number;
            try {
              k = key(x);
            } catch (err) {
              countFailure(ctx, scope, err);
              return;
            }
            const input = inputs.get(k);
            if (input) input.next(x);
            else unrouted(x, k);
          },
          error: (e) => subscriber.error(e),
          complete: () => {
            for (const input of inputs.values()) input.complete();
            subscriber.complete();
          },
        }),
      );
      return subscription;
    });
}
