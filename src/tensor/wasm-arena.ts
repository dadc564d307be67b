/**
 * The memory an engine's buffers live in: one SHARED WebAssembly.Memory with a bump allocator.
 * A shared memory never detaches: after memory.grow() the old SharedArrayBuffer objects stay
 * valid views of the same bytes (only shorter), so a Float32Array handed out before a growth
 * keeps working. Every buffer object the arena has ever handed views of is remembered, which is
 * how a kernel call tells its own buffers (used in place, pointer = byteOffset) from foreign
 * ones (copied through a scratch area).
 */

export const WASM_PAGE_BYTES = 65536;
/** 2 GiB: enough for any MNIST workspace; the address space is only reserved, not touched. */
export const WASM_MAX_PAGES = 32768;
/** The module's static data (libm tables) lies below this address; the heap starts here. */
const HEAP_BASE = 64 * 1024;
/** Readable bytes after every buffer, so a 4-lane load at a row's end stays inside memory. */
const PAD = 16;

export class WasmArena {
  readonly memory: WebAssembly.Memory;
  private top = HEAP_BASE;
  /** every SharedArrayBuffer object this memory has had, newest first (one per growth) */
  private readonly known: ArrayBufferLike[] = [];
  private current: ArrayBufferLike;
  /** views of the whole current buffer, for copies through scratch */
  f32!: Float32Array;
  u32!: Uint32Array;
  u8!: Uint8Array;

  /**
   * 32 MiB to start with: committed lazily by the OS, and large enough that the buffers of a
   * usual run come from one SharedArrayBuffer object, which makes owns() a single comparison.
   */
  constructor(initialPages = 512) {
    this.memory = new WebAssembly.Memory({ initial: initialPages, maximum: WASM_MAX_PAGES, shared: true });
    this.current = this.memory.buffer;
    this.refresh();
  }

  /** A 64-byte-aligned region of `bytes` bytes (zeroed: fresh memory is zero), as a byte address. */
  allocBytes(bytes: number): number {
    if (!(Number.isInteger(bytes) && bytes >= 0)) throw new RangeError(`cannot allocate ${bytes} bytes`);
    const ptr = (this.top + 63) & ~63;
    const end = ptr + bytes + PAD;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / WASM_PAGE_BYTES);
      if (have / WASM_PAGE_BYTES + pages > WASM_MAX_PAGES) {
        throw new RangeError(`the wasm engine ran out of memory (${WASM_MAX_PAGES * WASM_PAGE_BYTES / 2 ** 30} GiB) allocating ${bytes} bytes: use a smaller --batch, or --kernels js`);
      }
      this.memory.grow(pages);
      this.refresh();
    }
    this.top = end;
    return ptr;
  }

  /** A Float32Array of `length` floats living in this memory. */
  allocF32(length: number): Float32Array {
    const ptr = this.allocBytes(length * 4);
    return new Float32Array(this.current, ptr, length);
  }

  /** True when `a` is a view into this memory (allocated here, before or after any growth). */
  owns(a: ArrayBufferView): boolean {
    const b = a.buffer;
    if (b === this.current) return true;
    for (let i = 1; i < this.known.length; i++) if (this.known[i] === b) return true;
    return false;
  }

  /** Bytes in use, for tests and reports. */
  get used(): number {
    return this.top;
  }

  private refresh(): void {
    // memory.buffer of a shared memory is a new SharedArrayBuffer object after each growth
    this.current = this.memory.buffer;
    this.known.unshift(this.current);
    this.f32 = new Float32Array(this.current);
    this.u32 = new Uint32Array(this.current);
    this.u8 = new Uint8Array(this.current);
  }
}

/**
 * Per-call staging of foreign arrays. Each kernel call begins(), asks for the pointer of each
 * argument (own buffers pass through untouched), and ends(), which copies outputs back into
 * the foreign arrays. The scratch region is reused across calls and only grows.
 */
export class Staging {
  private base = 0;
  private cap = 0;
  private used = 0;
  private readonly backTo: (Float32Array | null)[] = [null, null, null, null];
  private readonly backPtr = new Int32Array(4);
  private readonly backLen = new Int32Array(4);
  private nBack = 0;

  constructor(private readonly arena: WasmArena) {}

  begin(): void {
    this.used = 0;
    this.nBack = 0;
  }

  /** Pointer to the first n floats of `a`, which the kernel only reads. */
  input(a: Float32Array, n: number, name: string): number {
    checkLength(a, n, name);
    if (this.arena.owns(a)) return a.byteOffset;
    const p = this.reserve(n * 4);
    this.arena.f32.set(n === a.length ? a : a.subarray(0, n), p >> 2);
    return p;
  }

  /** Pointer to the first n floats of `a`, which the kernel writes (and reads first when accumulate). */
  output(a: Float32Array, n: number, name: string, accumulate: boolean): number {
    checkLength(a, n, name);
    if (this.arena.owns(a)) return a.byteOffset;
    const p = this.reserve(n * 4);
    if (accumulate) this.arena.f32.set(n === a.length ? a : a.subarray(0, n), p >> 2);
    if (this.nBack === this.backTo.length) throw new Error('internal: more than 4 foreign outputs in one kernel call');
    this.backTo[this.nBack] = a;
    this.backPtr[this.nBack] = p;
    this.backLen[this.nBack] = n;
    this.nBack++;
    return p;
  }

  /** Pointer to the first n bytes of a byte array (labels), copied unless it lives here. */
  bytes(a: Uint8Array, n: number, name: string): number {
    if (a.length < n) throw new RangeError(`${name} has ${a.length} entries but the call needs ${n}`);
    if (this.arena.owns(a)) return a.byteOffset;
    const p = this.reserve(n);
    this.arena.u8.set(n === a.length ? a : a.subarray(0, n), p);
    return p;
  }

  /** Raw scratch bytes (index lists). */
  scratch(bytes: number): number {
    return this.reserve(bytes);
  }

  end(): void {
    for (let i = 0; i < this.nBack; i++) {
      const p = this.backPtr[i]! >> 2;
      this.backTo[i]!.set(this.arena.f32.subarray(p, p + this.backLen[i]!));
      this.backTo[i] = null;
    }
    this.nBack = 0;
  }

  private reserve(bytes: number): number {
    const aligned = (bytes + 63) & ~63;
    if (this.used + aligned > this.cap) {
      // A new, larger region; the old one is abandoned (sizes double, so the waste is bounded).
      // Arguments already staged in the old region stay valid: it is never reused.
      const cap = Math.max(2 * this.cap, aligned, 64 * 1024);
      this.base = this.arena.allocBytes(cap);
      this.cap = cap;
      this.used = 0;
    }
    const p = this.base + this.used;
    this.used += aligned;
    return p;
  }
}

function checkLength(a: Float32Array, n: number, name: string): void {
  if (a.length < n) throw new RangeError(`${name} has ${a.length} floats but the call needs ${n}`);
}
