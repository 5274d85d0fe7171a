// Failures of the OCI runtime CLI, carrying the runtime's own message. runc and crun write their
// errors to the --log file (JSON lines with level "error"); the last one is what went wrong.
import { open, stat } from "node:fs/promises";
import { BerthError, Code } from "../../../pkg/errdefs/errdefs.js";

export class RuntimeError extends BerthError {
  constructor(
    code: Code,
    /** The runtime binary, e.g. "runc" or "crun". */
    readonly runtime: string,
    /** Its subcommand, e.g. "create". */
    readonly command: string,
    readonly containerId: string | undefined,
    /** What the runtime itself said (its last logged error, else its stderr), possibly empty. */
    readonly runtimeMessage: string,
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
  ) {
    const who = containerId === undefined ? "" : ` ${JSON.stringify(containerId)}`;
    const how = signal ? `killed by ${signal}` : `exit status ${exitCode}`;
    super(code, `${runtime} ${command}${who}: ${runtimeMessage || "failed"} (${how})`);
    this.name = "RuntimeError";
  }
}

/**
 * The status code a runtime failure maps to, from the runtime's message (runc's and crun's
 * wording both): a missing container is NotFound, as is signalling a process that has exited
 * (containerd reports "process already finished"), an id in use is AlreadyExists.
 */
export function codeOfRuntimeMessage(command: string, message: string): Code {
  if (
    /container does not exist|\/status`: No such file or directory|container `[^`]*` does not exist/.test(
      message,
    )
  ) {
    return Code.NotFound;
  }
  if (command === "kill" && /not running|no such process|process already finished/i.test(message)) {
    return Code.NotFound;
  }
  if (/container with id exists|already exists/.test(message)) return Code.AlreadyExists;
  return Code.Unknown;
}

/** Size of the log file now, so that a failure reads only what the failed command wrote. */
export async function logOffset(path: string | undefined): Promise<number> {
  if (!path) return 0;
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** Messages of the "error" level lines the runtime logged from offset on, in order. */
export async function loggedErrors(path: string | undefined, offset: number): Promise<string[]> {
  if (!path) return [];
  let text: string;
  try {
    const handle = await open(path, "r");
    try {
      const { size } = await handle.stat();
      const buf = Buffer.alloc(Math.max(0, size - offset));
      await handle.read(buf, 0, buf.length, offset);
      text = buf.toString("utf8");
    } finally {
      await handle.close();
    }
  } catch {
    return [];
  }
  const errors: string[] = [];
  const take = (line: string): boolean => {
    try {
      const entry = JSON.parse(line) as { level?: unknown; msg?: unknown };
      if (entry.level === "error" && typeof entry.msg === "string") errors.push(entry.msg.trim());
      return true;
    } catch {
      return false;
    }
  };
  for (const line of text.split("\n")) {
    if (!line.trim() || take(line)) continue;
    // Two entries run together (a writer that left out the newline); anything else that is not
    // JSON was printed into the log by a child of the runtime, and is skipped.
    for (const part of line.split(/(?<=})(?={)/)) take(part);
  }
  return errors;
}
