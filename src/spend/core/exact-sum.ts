// Dollars summed over many records (or many audit events) without drift. A plain `+=` over
// thousands of fractional prices loses a little at each step, and the totals `keyway spend`, the
// admin API and the metrics print must agree with the prices to 1e-6 USD whatever the count.
// Neumaier's compensated sum keeps the lost low-order part beside the total and adds it back.

export class ExactSum {
  #sum = 0;
  #carry = 0;

  add(value: number): this {
    const next = this.#sum + value;
    // Whichever operand is larger kept its bits; what the smaller lost goes to the carry.
    if (Math.abs(this.#sum) >= Math.abs(value)) this.#carry += this.#sum - next + value;
    else this.#carry += value - next + this.#sum;
    this.#sum = next;
    return this;
  }

  get value(): number {
    return this.#sum + this.#carry;
  }
}

/**
 * Dollars as keyway prints them: to the nano-dollar, which is below any price per token and keeps
 * float noise (0.30000000000000004) out of listings, far inside the 1e-6 the totals promise.
 */
export const roundUsd = (usd: number): number => Math.round(usd * 1e9) / 1e9;
