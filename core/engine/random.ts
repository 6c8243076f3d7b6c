// A small seeded PRNG whose whole state is one 32-bit integer, so runs are repeatable and a resumed
// run continues the exact same random stream (the state goes into checkpoints).

export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Current state; `new Random(0).setState(s)` continues the same stream. */
  getState(): number {
    return this.state;
  }

  setState(state: number): this {
    this.state = state >>> 0;
    return this;
  }

  /** Uniform in [0, 1) (mulberry32). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    let u = this.next();
    while (u <= Number.EPSILON) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Normal(0, std^2) truncated to [low, high] by rejection (timm's trunc_normal_ bounds are absolute). */
  truncatedNormal(std: number, low = -2, high = 2): number {
    for (;;) {
      const value = this.normal() * std;
      if (value >= low && value <= high) return value;
    }
  }

  /** A bound function usable where `() => number` is expected. */
  get uniform(): () => number {
    return () => this.next();
  }
}
