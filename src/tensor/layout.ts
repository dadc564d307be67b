/**
 * The flat parameter layout: every tensor of the network is a named range of one Float32Array.
 * Parameters, gradients and optimizer state share the layout, so each is one buffer that can be
 * sent, summed and stepped as a whole; layers see subarray views, never copies.
 */

export interface TensorSpec {
  name: string;
  shape: number[];
  offset: number;
  size: number;
  /** Weights are regularised by weight decay; biases are not (Nielsen, chapter 3). */
  decays: boolean;
}

export class ParamLayout {
  readonly tensors: readonly TensorSpec[];
  readonly size: number;

  constructor(entries: { name: string; shape: number[]; decays: boolean }[]) {
    let offset = 0;
    this.tensors = entries.map((e) => {
      const size = e.shape.reduce((a, b) => a * b, 1);
      const spec = { name: e.name, shape: [...e.shape], offset, size, decays: e.decays };
      offset += size;
      return spec;
    });
    this.size = offset;
  }

  /** Named views into a buffer with this layout. */
  views(buffer: Float32Array): Map<string, Float32Array> {
    this.check(buffer);
    const out = new Map<string, Float32Array>();
    for (const t of this.tensors) out.set(t.name, buffer.subarray(t.offset, t.offset + t.size));
    return out;
  }

  view(buffer: Float32Array, name: string): Float32Array {
    const t = this.tensor(name);
    return buffer.subarray(t.offset, t.offset + t.size);
  }

  tensor(name: string): TensorSpec {
    const t = this.tensors.find((x) => x.name === name);
    if (!t) throw new Error(`no tensor named ${name} in this layout (has ${this.tensors.map((x) => x.name).join(', ')})`);
    return t;
  }

  check(buffer: Float32Array): void {
    if (buffer.length !== this.size) {
      throw new RangeError(`buffer has ${buffer.length} floats but the layout needs ${this.size}`);
    }
  }

  /**
   * A short stable fingerprint of names and shapes (FNV-1a over the description), so two
   * processes can tell in a handshake whether they agree on what the flat buffer means.
   */
  hash(): string {
    const text = this.tensors.map((t) => `${t.name}:${t.shape.join('x')}`).join(';');
    let h = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h.toString(16).padStart(8, '0');
  }
}
