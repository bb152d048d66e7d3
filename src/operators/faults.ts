/**
 * `faults(options)`: a lossy, jittery link as an operator. Put it on the
 * ingress side, the egress side or both to test how TCP (ours and the
 * guest's) copes with loss, duplication, reordering and delay; the kernels
 * here have no netem, so this is where such faults come from.
 *
 * Each frame that arrives goes through four stages, in this order:
 * - drop: with probability `drop` the frame is discarded;
 * - duplicate: with probability `duplicate` it is emitted twice in a row
 *   (the same object twice: frames are never mutated once emitted);
 * - reorder: with probability `reorder`, if no frame is held already, it
 *   is held back and released right after the next frame, or on its own
 *   after `reorderMs` if no other frame comes;
 * - delay: every frame leaves `delayMs` after it got there (a fixed link
 *   latency, so order is kept; 0 means at once).
 *
 * Decisions come from a small seeded generator: the same seed and the same
 * input give the same faults. Each arriving frame draws exactly three
 * numbers (drop, duplicate, reorder) whatever the fractions, so changing
 * one fraction does not reshuffle the others' decisions. Time comes only
 * from the injected scheduler (virtual time under TestScheduler).
 *
 * On completion the held frame is released at once and completion follows
 * the last delayed frame; an error is passed on at once. On unsubscription
 * (or error) the timers are cancelled and held frames let go: nothing is
 * kept or emitted afterwards, and `stats.discarded` counts what was lost
 * that way. `stats` is live and shared by every subscription of the
 * returned operator.
 */
import {
  Observable,
  asyncScheduler,
  type MonoTypeOperatorFunction,
  type SchedulerLike,
  type Subscription,
} from 'rxjs';

export interface FaultsOptions {
  /** Fraction of frames dropped, 0..1 (default 0). */
  drop?: number;
  /** Fraction of frames emitted twice, 0..1 (default 0). */
  duplicate?: number;
  /** Fraction of frames held back behind the next one, 0..1 (default 0). */
  reorder?: number;
  /** Fixed delay of every frame, in ms (default 0). */
  delayMs?: number;
  /** Longest a reordered frame waits for a successor, in ms (default 5). */
  reorderMs?: number;
  /** Seed of the generator (default 1). */
  seed?: number;
  scheduler?: SchedulerLike;
}

/** What the operator did, counted per frame. */
export interface FaultStats {
  /** Frames that arrived. */
  seen: number;
  dropped: number;
  /** Extra copies emitted. */
  duplicated: number;
  /** Frames held back behind a successor (or released by the timeout). */
  reordered: number;
  /** Frames that went through the delay queue. */
  delayed: number;
  /** Frames emitted, copies included. */
  emitted: number;
  /** Frames let go unemitted at unsubscription or error. */
  discarded: number;
}

export type FaultsOperator<T> = MonoTypeOperatorFunction<T> & { readonly stats: FaultStats };

/**
 * A seeded generator of uniform numbers in [0, 1): a Weyl sequence (the
 * state advances by an odd constant) passed through a 32-bit avalanche
 * mix. Small, fast, and plenty for fault decisions; not for cryptography.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z ^= z >>> 16;
    return (z >>> 0) / 0x1_0000_0000;
  };
}

function fraction(name: string, value: number | undefined): number {
  const v = value ?? 0;
  if (!(v >= 0 && v <= 1)) throw new RangeError(`faults: ${name} must be in [0, 1], not ${v}`);
  return v;
}

function millis(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!(v >= 0 && Number.isFinite(v))) {
    throw new RangeError(`faults: ${name} must be a non-negative number of ms, not ${v}`);
  }
  return v;
}

export function faults<T>(options: FaultsOptions = {}): FaultsOperator<T> {
  const drop = fraction('drop', options.drop);
  const duplicate = fraction('duplicate', options.duplicate);
  const reorder = fraction('reorder', options.reorder);
  const delayMs = millis('delayMs', options.delayMs, 0);
  const reorderMs = millis('reorderMs', options.reorderMs, 5);
  const seed = options.seed ?? 1;
  const scheduler = options.scheduler ?? asyncScheduler;
  const stats: FaultStats = {
    seen: 0,
    dropped: 0,
    duplicated: 0,
    reordered: 0,
    delayed: 0,
    emitted: 0,
    discarded: 0,
  };

  const operator = (source: Observable<T>): Observable<T> =>
    new Observable<T>((subscriber) => {
      const random = seededRandom(seed);
      /** The frame held for reordering, and how many copies it stands for. */
      let held: { frame: T; copies: number } | undefined;
      let heldTimer: Subscription | undefined;
      const delayQueue: { due: number; frame: T }[] = [];
      let delayTimer: Subscription | undefined;
      let sourceDone = false;

      const emit = (frame: T): void => {
        stats.emitted++;
        subscriber.next(frame);
      };

      const completeIfDrained = (): void => {
        if (sourceDone && held === undefined && delayQueue.length === 0) subscriber.complete();
      };

      const drainDelayed = (): void => {
        delayTimer = undefined;
        const now = scheduler.now();
        while (delayQueue.length > 0 && delayQueue[0]!.due <= now) {
          emit(delayQueue.shift()!.frame);
          if (subscriber.closed) return;
        }
        armDelayTimer();
        completeIfDrained();
      };

      const armDelayTimer = (): void => {
        const head = delayQueue[0];
        if (head === undefined || delayTimer !== undefined) return;
        delayTimer = scheduler.schedule(drainDelayed, Math.max(0, head.due - scheduler.now()));
      };

      /** The last stage: out now, or after the link's delay. */
      const send = (frame: T, copies: number): void => {
        for (let i = 0; i < copies; i++) {
          if (delayMs === 0) {
            emit(frame);
            continue;
          }
          stats.delayed++;
          delayQueue.push({ due: scheduler.now() + delayMs, frame });
          armDelayTimer();
        }
      };

      const releaseHeld = (): void => {
        heldTimer?.unsubscribe();
        heldTimer = undefined;
        const h = held;
        held = undefined;
        if (h !== undefined) send(h.frame, h.copies);
      };

      const hold = (frame: T, copies: number): void => {
        stats.reordered++;
        held = { frame, copies };
        heldTimer = scheduler.schedule(() => {
          heldTimer = undefined;
          releaseHeld();
          completeIfDrained();
        }, reorderMs);
      };

      const onFrame = (frame: T): void => {
        stats.seen++;
        const dropDraw = random();
        const duplicateDraw = random();
        const reorderDraw = random();
        if (dropDraw < drop) {
          stats.dropped++;
          return;
        }
        const copies = duplicateDraw < duplicate ? 2 : 1;
        stats.duplicated += copies - 1;
        if (held === undefined && reorderDraw < reorder) {
          hold(frame, copies);
          return;
        }
        send(frame, copies);
        releaseHeld();
      };

      const subscription = source.subscribe({
        next: onFrame,
        error: (err: unknown) => subscriber.error(err),
        complete: () => {
          sourceDone = true;
          releaseHeld();
          completeIfDrained();
        },
      });

      return () => {
        subscription.unsubscribe();
        heldTimer?.unsubscribe();
        delayTimer?.unsubscribe();
        stats.discarded += (held?.copies ?? 0) + delayQueue.length;
        held = undefined;
        delayQueue.length = 0;
      };
    });

  return Object.assign(operator, { stats });
}
