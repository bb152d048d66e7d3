/**
 * The retransmission timeout (RFC 6298): a smoothed RTT and its variance
 * from samples, RTO = SRTT + max(G, 4 * RTTVAR) clamped to [min, max], and
 * doubling on each expiry until a fresh sample arrives.
 *
 * Deviation, said plainly: RFC 6298 asks for a 1 s minimum; like Linux we
 * default to 200 ms (configurable), because our peer is a guest on the
 * same machine and a one-second floor makes every loss cost a second.
 */

/** Clock granularity G in ms: our clock is the `now` the glue passes in. */
const GRANULARITY = 1;

export class RttEstimator {
  srtt = 0;
  rttvar = 0;
  /** The current RTO in ms, backoff included. */
  rto: number;
  private sampled = false;

  constructor(
    initialRto: number,
    private readonly minRto: number,
    private readonly maxRto: number,
  ) {
    this.rto = initialRto;
  }

  get hasSample(): boolean {
    return this.sampled;
  }

  /** Feeds one RTT measurement R in ms (RFC 6298 section 2). */
  sample(r: number): void {
    const rtt = Math.max(r, 0);
    if (!this.sampled) {
      this.srtt = rtt;
      this.rttvar = rtt / 2;
      this.sampled = true;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rtt);
      this.srtt = 0.875 * this.srtt + 0.125 * rtt;
    }
    this.rto = this.clamp(this.srtt + Math.max(GRANULARITY, 4 * this.rttvar));
  }

  /** Doubles the RTO after an expiry (RFC 6298 5.5). */
  backoff(): void {
    this.rto = this.clamp(this.rto * 2);
  }

  /**
   * After the SYN's timer expired and before any sample, the RTO used once
   * data flows is 3 s (RFC 6298 5.7), or our maximum if that is lower.
   */
  resetAfterSynTimeout(): void {
    if (!this.sampled) this.rto = this.clamp(3000);
  }

  private clamp(v: number): number {
    return Math.min(this.maxRto, Math.max(this.minRto, Math.ceil(v)));
  }
}
