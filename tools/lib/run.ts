/**
 * Running host commands for the runners: output either captured or
 * streamed to stderr with a prefix (so long builds show progress while
 * stdout stays reserved for KTAP).
 *
 * @module
 */

/** A failed host command. */
export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly code: number,
    readonly output: string,
  ) {
    super(`${command} failed with exit code ${code}`);
    this.name = "CommandError";
  }
}

/** Options of `run`. */
export interface RunOptions {
  readonly cwd?: string;
  readonly env?: Record<string, string>;
  /** Stream output to stderr, each line behind this prefix. */
  readonly stream?: string;
  /** Keep only every Nth streamed line (plus the last ones on failure). */
  readonly every?: number;
  /** Text for stdin. */
  readonly input?: string;
}

/** Runs a command; returns stdout+stderr; throws CommandError on failure. */
export async function run(
  cmd: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<string> {
  const proc = new Deno.Command(cmd, {
    args: [...args],
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.env ? { env: options.env } : {}),
    stdin: options.input !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.input !== undefined) {
    const w = proc.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.input));
    await w.close();
  }
  const tail: string[] = [];
  const all: string[] = [];
  let count = 0;
  const pump = async (stream: ReadableStream<Uint8Array>): Promise<void> => {
    const dec = new TextDecoder();
    let buf = "";
    const flush = (line: string): void => {
      all.push(line);
      tail.push(line);
      if (tail.length > 40) tail.shift();
      if (options.stream !== undefined) {
        count++;
        if (!options.every || count % options.every === 0) {
          console.error(`${options.stream}${line}`);
        }
      }
    };
    for await (const chunk of stream) {
      buf += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        flush(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    }
    if (buf) flush(buf);
  };
  await Promise.all([pump(proc.stdout), pump(proc.stderr)]);
  const status = await proc.status;
  if (!status.success) {
    if (options.stream !== undefined && options.every) {
      for (const l of tail) console.error(`${options.stream}${l}`);
    }
    throw new CommandError(
      [cmd, ...args].join(" "),
      status.code,
      tail.join("\n"),
    );
  }
  return all.join("\n");
}

/** Whether an executable is on PATH. */
export async function which(name: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      const st = await Deno.stat(`${dir}/${name}`);
      if (st.isFile && st.mode !== null && (st.mode & 0o111) !== 0) {
        return `${dir}/${name}`;
      }
    } catch { /* not here */ }
  }
  return undefined;
}
