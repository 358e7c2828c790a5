/**
 * A small declarative codec for the uAPI structs: each layout lists its
 * fields with their byte offset and C type, exactly as the kernel header
 * spells them, and encodes into / decodes from one reused buffer through a
 * DataView. Offsets and sizes are checked against the real headers by
 * `abi_test.ts` (values in `fixtures/abi/<version>.json`, written by
 * `deno task abi`).
 *
 * Values outside a field's C range are rejected with RangeError, never
 * wrapped: a u32 field given -1 or 2^32 throws.
 *
 * @module
 */

/** C scalar types used by the iommufd and VFIO uAPI. */
export type Scalar = "u8" | "u16" | "u32" | "s32" | "u64" | "s64";

/** The JS type of a scalar: 64-bit fields are bigint, the rest number. */
export type JsOf<T extends Scalar> = T extends "u64" | "s64" ? bigint : number;

/** One field: byte offset, C type, and the kernel version it appeared in. */
export interface FieldDef {
  readonly offset: number;
  readonly type: Scalar;
  /** First kernel series ("7.3") whose header has this field; absent = all. */
  readonly since?: string;
  /**
   * The C member designator when it differs from the key, e.g.
   * "mock_domain.out_stdev_id" for a member of iommu_test_cmd's union.
   */
  readonly c?: string;
}

/** A field table: key is the kernel's field name. */
export type FieldTable = Readonly<Record<string, FieldDef>>;

/** Decoded values of a field table. */
export type Values<F extends FieldTable> = {
  -readonly [K in keyof F]: JsOf<F[K]["type"]>;
};

/** Values accepted by `encode`: any subset; the rest are zero. */
export type Input<F extends FieldTable> = Partial<Values<F>>;

const WIDTH: Record<Scalar, number> = {
  u8: 1,
  u16: 2,
  u32: 4,
  s32: 4,
  u64: 8,
  s64: 8,
};

const LIMITS: Record<Scalar, readonly [bigint, bigint]> = {
  u8: [0n, 0xffn],
  u16: [0n, 0xffffn],
  u32: [0n, 0xffff_ffffn],
  s32: [-0x8000_0000n, 0x7fff_ffffn],
  u64: [0n, 0xffff_ffff_ffff_ffffn],
  s64: [-0x8000_0000_0000_0000n, 0x7fff_ffff_ffff_ffffn],
};

/** Byte width of a scalar type. */
export function widthOf(type: Scalar): number {
  return WIDTH[type];
}

/** Options of a struct layout. */
export interface StructOptions {
  /**
   * The extensible-size field the codec fills with the struct size unless
   * the caller sets it: "size" for iommufd, "argsz" for VFIO.
   */
  readonly sizeField?: string;
  /** Smaller sizes of this struct in older kernel series, e.g. { "6.12": 16 }. */
  readonly sizeIn?: Readonly<Record<string, number>>;
  /** First kernel series that has this struct at all. */
  readonly since?: string;
  /** The C type to measure, when it is not `struct <name>`. */
  readonly cType?: string;
}

/**
 * A C struct layout. `encode` writes into the struct's own reused buffer
 * (or one given) and returns it; `decode` reads every field back.
 */
export class Struct<F extends FieldTable> {
  readonly #buffer: Uint8Array<ArrayBuffer>;
  readonly #view: DataView;
  readonly #entries: readonly (readonly [string, FieldDef])[];
  /**
   * The fields as parallel arrays, for encode and decode, which run for
   * every ioctl: under TCG a lane runs most calls in V8's interpreter,
   * where iterating [key, field] pairs (an iterator and a destructuring per
   * field) cost ~0.1 ms a struct against ~15 us for an indexed loop.
   */
  readonly #keys: readonly string[];
  readonly #offsets: readonly number[];
  readonly #types: readonly Scalar[];
  /** Index of the size field (`options.sizeField`), -1 if none. */
  readonly #sizeAt: number;

  /**
   * @param name the C struct name without "struct", e.g. "iommu_ioas_map"
   * @param size sizeof(struct name) in the newest supported kernel
   * @param fields the field table
   * @param options extensible-size field, older sizes, C type
   */
  constructor(
    readonly name: string,
    readonly size: number,
    readonly fields: F,
    readonly options: StructOptions = {},
  ) {
    this.#entries = Object.entries(fields);
    for (const [key, f] of this.#entries) {
      if (
        !Number.isInteger(f.offset) || f.offset < 0 ||
        f.offset + WIDTH[f.type] > size
      ) {
        throw new RangeError(
          `struct ${name}: field ${key} at ${f.offset} does not fit in ${size} bytes`,
        );
      }
    }
    this.#keys = this.#entries.map((e) => e[0]);
    this.#offsets = this.#entries.map((e) => e[1].offset);
    this.#types = this.#entries.map((e) => e[1].type);
    this.#sizeAt = options.sizeField === undefined
      ? -1
      : this.#keys.indexOf(options.sizeField);
    this.#buffer = new Uint8Array(size);
    this.#view = new DataView(this.#buffer.buffer);
  }

  /** The C type expression to measure: `struct <name>` unless overridden. */
  get cType(): string {
    return this.options.cType ?? `struct ${this.name}`;
  }

  /** sizeof in a kernel series ("6.12", "7.3"); the newest size by default. */
  sizeIn(series?: string): number {
    if (series === undefined) return this.size;
    return this.options.sizeIn?.[series] ?? this.size;
  }

  /** Whether a field exists in a kernel series' header. */
  hasField(key: string, series: string): boolean {
    const f = this.fields[key];
    return f !== undefined && (f.since === undefined ||
      compareSeries(series, f.since) >= 0);
  }

  /** offsetof(struct, key). */
  offsetof(key: keyof F & string): number {
    return this.#field(key).offset;
  }

  /**
   * offsetof + sizeof the member: the kernel's offsetofend(). An array
   * member (kept as fields "name[0]", "name[1]", ...) may be named bare.
   */
  offsetofend(key: (keyof F & string) | string): number {
    const f = this.fields[key];
    if (f !== undefined) return f.offset + WIDTH[f.type];
    let end = -1;
    for (const [k, e] of this.#entries) {
      if (k.startsWith(`${key}[`) && /^\[\d+\]$/.test(k.slice(key.length))) {
        end = Math.max(end, e.offset + WIDTH[e.type]);
      }
    }
    if (end < 0) {
      throw new RangeError(`struct ${this.name} has no field ${key}`);
    }
    return end;
  }

  /** The field at the highest offset (the last one the kernel may read). */
  get lastField(): keyof F & string {
    let best: [string, number] | undefined;
    for (const [key, f] of this.#entries) {
      if (best === undefined || f.offset > best[1]) best = [key, f.offset];
    }
    if (best === undefined) {
      throw new Error(`struct ${this.name} has no fields`);
    }
    return best[0];
  }

  /**
   * Encodes values (missing ones are zero) into `into` or the struct's own
   * buffer, which is returned. The size field defaults to `size` bytes.
   */
  encode(
    values: Input<F>,
    into: Uint8Array<ArrayBuffer> = this.#buffer,
  ): Uint8Array<ArrayBuffer> {
    if (into.byteLength < this.size) {
      throw new RangeError(
        `struct ${this.name}: buffer of ${into.byteLength} bytes is smaller than ${this.size}`,
      );
    }
    const view = into === this.#buffer
      ? this.#view
      : new DataView(into.buffer, into.byteOffset, into.byteLength);
    into.fill(0, 0, this.size);
    const keys = this.#keys;
    const given = values as Record<string, number | bigint | undefined>;
    for (let i = 0; i < keys.length; i++) {
      let v = given[keys[i]!];
      if (v === undefined) {
        if (i !== this.#sizeAt) continue;
        v = this.size;
      }
      write(view, this.#types[i]!, this.#offsets[i]!, v, this.name, keys[i]!);
    }
    return into;
  }

  /** Decodes every field from `from` (the struct's own buffer by default). */
  decode(from: Uint8Array<ArrayBuffer> = this.#buffer): Values<F> {
    const view = from === this.#buffer
      ? this.#view
      : new DataView(from.buffer, from.byteOffset, from.byteLength);
    const out: Record<string, number | bigint> = {};
    const keys = this.#keys;
    for (let i = 0; i < keys.length; i++) {
      out[keys[i]!] = read(view, this.#types[i]!, this.#offsets[i]!);
    }
    return out as Values<F>;
  }

  /** Reads one field from `from` (the struct's own buffer by default). */
  get<K extends keyof F & string>(
    key: K,
    from: Uint8Array<ArrayBuffer> = this.#buffer,
  ): JsOf<F[K]["type"]> {
    const view = from === this.#buffer
      ? this.#view
      : new DataView(from.buffer, from.byteOffset, from.byteLength);
    const f = this.#field(key);
    return read(view, f.type, f.offset) as JsOf<F[K]["type"]>;
  }

  /** A fresh zeroed buffer of `size` bytes (or more, for trailing data). */
  alloc(bytes: number = this.size): Uint8Array<ArrayBuffer> {
    return new Uint8Array(Math.max(bytes, this.size));
  }

  #field(key: string): FieldDef {
    const f = this.fields[key];
    if (f === undefined) {
      throw new RangeError(`struct ${this.name} has no field ${key}`);
    }
    return f;
  }
}

/** Compares kernel series "6.12" < "7.3" numerically. */
export function compareSeries(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * LIMITS as numbers, for number values (safe integers; the 64-bit types
 * clipped to the safe range, which a safe integer cannot leave).
 */
const NUMBER_LIMITS: Record<Scalar, readonly [number, number]> = {
  u8: [0, 0xff],
  u16: [0, 0xffff],
  u32: [0, 0xffff_ffff],
  s32: [-0x8000_0000, 0x7fff_ffff],
  u64: [0, Number.MAX_SAFE_INTEGER],
  s64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** Whether `v` fits the C type (a number must be a safe integer). */
function inRange(type: Scalar, v: number | bigint): boolean {
  // No BigInt and no destructuring per field: encode runs for every ioctl.
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) return false;
    const limits = NUMBER_LIMITS[type];
    return v >= limits[0] && v <= limits[1];
  }
  const limits = LIMITS[type];
  return v >= limits[0] && v <= limits[1];
}

/** Checks that `v` fits the C type; throws RangeError naming the field. */
export function checkRange(
  type: Scalar,
  v: number | bigint,
  where: string,
): void {
  if (inRange(type, v)) return;
  if (typeof v === "number" && !Number.isSafeInteger(v)) {
    throw new RangeError(`${where}: ${v} is not an integer`);
  }
  const [lo, hi] = LIMITS[type];
  throw new RangeError(`${where}: ${v} is outside ${type} [${lo}, ${hi}]`);
}

function write(
  view: DataView,
  type: Scalar,
  offset: number,
  v: number | bigint,
  struct: string,
  key: string,
): void {
  // The field's name is spelled out only for the error.
  if (!inRange(type, v)) checkRange(type, v, `struct ${struct}.${key}`);
  switch (type) {
    case "u8":
      return view.setUint8(offset, Number(v));
    case "u16":
      return view.setUint16(offset, Number(v), true);
    case "u32":
      return view.setUint32(offset, Number(v), true);
    case "s32":
      return view.setInt32(offset, Number(v), true);
    case "u64":
      if (typeof v === "number") {
        // A safe integer >= 0 (checked): two halves, no BigInt.
        view.setUint32(offset, v % 0x1_0000_0000, true);
        return view.setUint32(offset + 4, Math.floor(v / 0x1_0000_0000), true);
      }
      return view.setBigUint64(offset, v, true);
    case "s64":
      return view.setBigInt64(offset, BigInt(v), true);
  }
}

function read(view: DataView, type: Scalar, offset: number): number | bigint {
  switch (type) {
    case "u8":
      return view.getUint8(offset);
    case "u16":
      return view.getUint16(offset, true);
    case "u32":
      return view.getUint32(offset, true);
    case "s32":
      return view.getInt32(offset, true);
    case "u64":
      return view.getBigUint64(offset, true);
    case "s64":
      return view.getBigInt64(offset, true);
  }
}

/** Shorthand for a field definition. */
export function field<T extends Scalar>(
  offset: number,
  type: T,
  extra: { since?: string; c?: string } = {},
): FieldDef & { readonly type: T } {
  return { offset, type, ...extra };
}
