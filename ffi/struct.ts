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
    const sizeField = this.options.sizeField;
    for (const [key, f] of this.#entries) {
      let v = (values as Record<string, number | bigint | undefined>)[key];
      if (v === undefined) {
        if (key !== sizeField) continue;
        v = this.size;
      }
      write(view, f, v, this.name, key);
    }
    return into;
  }

  /** Decodes every field from `from` (the struct's own buffer by default). */
  decode(from: Uint8Array<ArrayBuffer> = this.#buffer): Values<F> {
    const view = from === this.#buffer
      ? this.#view
      : new DataView(from.buffer, from.byteOffset, from.byteLength);
    const out: Record<string, number | bigint> = {};
    for (const [key, f] of this.#entries) out[key] = read(view, f);
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
    return read(view, this.#field(key)) as JsOf<F[K]["type"]>;
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

/** Checks that `v` fits the C type; throws RangeError naming the field. */
export function checkRange(
  type: Scalar,
  v: number | bigint,
  where: string,
): void {
  const [lo, hi] = LIMITS[type];
  if (typeof v === "number") {
    // No BigInt per field: encode runs for every ioctl.
    if (!Number.isSafeInteger(v)) {
      throw new RangeError(`${where}: ${v} is not an integer`);
    }
    const [nlo, nhi] = NUMBER_LIMITS[type];
    if (v >= nlo && v <= nhi) return;
  } else if (v >= lo && v <= hi) {
    return;
  }
  throw new RangeError(`${where}: ${v} is outside ${type} [${lo}, ${hi}]`);
}

function write(
  view: DataView,
  f: FieldDef,
  v: number | bigint,
  struct: string,
  key: string,
): void {
  checkRange(f.type, v, `struct ${struct}.${key}`);
  switch (f.type) {
    case "u8":
      return view.setUint8(f.offset, Number(v));
    case "u16":
      return view.setUint16(f.offset, Number(v), true);
    case "u32":
      return view.setUint32(f.offset, Number(v), true);
    case "s32":
      return view.setInt32(f.offset, Number(v), true);
    case "u64":
      if (typeof v === "number") {
        // A safe integer >= 0 (checked): two halves, no BigInt.
        view.setUint32(f.offset, v % 0x1_0000_0000, true);
        return view.setUint32(
          f.offset + 4,
          Math.floor(v / 0x1_0000_0000),
          true,
        );
      }
      return view.setBigUint64(f.offset, v, true);
    case "s64":
      return view.setBigInt64(f.offset, BigInt(v), true);
  }
}

function read(view: DataView, f: FieldDef): number | bigint {
  switch (f.type) {
    case "u8":
      return view.getUint8(f.offset);
    case "u16":
      return view.getUint16(f.offset, true);
    case "u32":
      return view.getUint32(f.offset, true);
    case "s32":
      return view.getInt32(f.offset, true);
    case "u64":
      return view.getBigUint64(f.offset, true);
    case "s64":
      return view.getBigInt64(f.offset, true);
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
