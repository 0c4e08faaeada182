// Reads a byte stream in the two shapes aws-chunked framing needs, lines and runs of bytes, however
// the transport cut it: a line or a chunk may arrive split over any number of pieces, byte by byte.
// It keeps only what was asked for plus the rest of the last piece read, never the whole body.

/** Why a read could not be satisfied: the caller turns it into its own refusal. */
export class FramingError extends Error {
  override readonly name = 'FramingError';
}

export class ChunkReader {
  readonly #source: AsyncIterator<Buffer>;
  #pieces: Buffer[] = [];
  #length = 0;
  #done = false;

  constructor(source: AsyncIterator<Buffer>) {
    this.#source = source;
  }

  /** Bytes buffered but not read yet. */
  get buffered(): number {
    return this.#length;
  }

  /** True once the source has ended and every byte was read. */
  async atEnd(): Promise<boolean> {
    while (this.#length === 0) if (!(await this.#more())) return true;
    return false;
  }

  /**
   * The next line, without its CRLF. A line longer than `max` bytes is refused as soon as `max + 2`
   * bytes hold no CRLF, so a client cannot make keyway buffer an endless line.
   */
  async line(max: number, what: string): Promise<Buffer> {
    let from = 0;
    for (;;) {
      const front = this.#front(Math.min(this.#length, max + 2));
      const at = front.indexOf('\r\n', from, 'latin1');
      if (at !== -1) {
        const line = Buffer.from(front.subarray(0, at));
        this.#take(at + 2);
        return line;
      }
      if (front.length >= max + 2) throw new FramingError(`${what} is longer than ${max} bytes`);
      from = Math.max(0, front.length - 1); // a CR at the end may meet its LF in the next piece
      if (!(await this.#more())) throw new FramingError(`the body ends inside ${what}`);
    }
  }

  /** Exactly `size` bytes, as one buffer (a copy only when they span pieces): for a few bytes. */
  async bytes(size: number, what: string): Promise<Buffer> {
    const pieces = await this.pieces(size, what);
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, size);
  }

  /** Exactly `size` bytes, in the pieces they came in: a chunk's data is hashed and passed on uncopied. */
  async pieces(size: number, what: string): Promise<Buffer[]> {
    while (this.#length < size) if (!(await this.#more())) throw new FramingError(`the body ends inside ${what}`);
    return this.#take(size);
  }

  /** Stops reading the source; with destroyOnReturn false it stays open (the client still gets an answer). */
  async close(): Promise<void> {
    if (!this.#done) await this.#source.return?.();
    this.#done = true;
  }

  async #more(): Promise<boolean> {
    if (this.#done) return false;
    const { value, done } = await this.#source.next();
    if (done) {
      this.#done = true;
      return false;
    }
    if (value.length > 0) {
      this.#pieces.push(value);
      this.#length += value.length;
    }
    return true;
  }

  /** The first `size` buffered bytes as one buffer, joining the pieces that hold them. */
  #front(size: number): Buffer {
    const first = this.#pieces[0];
    if (first === undefined) return Buffer.alloc(0);
    if (first.length >= size) return first.subarray(0, size);
    let joined = 0;
    let count = 0;
    while (joined < size) joined += this.#pieces[count++]!.length;
    const whole = Buffer.concat(this.#pieces.slice(0, count), joined);
    this.#pieces.splice(0, count, whole);
    return whole;
  }

  #take(size: number): Buffer[] {
    const taken: Buffer[] = [];
    let left = size;
    while (left > 0) {
      const piece = this.#pieces[0]!;
      if (piece.length <= left) {
        taken.push(piece);
        this.#pieces.shift();
        left -= piece.length;
      } else {
        taken.push(piece.subarray(0, left));
        this.#pieces[0] = piece.subarray(left);
        left = 0;
      }
    }
    this.#length -= size;
    return taken;
  }
}
