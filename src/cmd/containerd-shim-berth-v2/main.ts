// containerd-shim-berth-v2: Berth's runtime v2 shim (runtime type io.containerd.berth.v2).
// `start` and `delete` are short commands the daemon runs in a container's bundle; without an
// action the process is the long-lived shim serving the Task service over ttrpc.
import { readFileSync, writeSync } from "node:fs";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import { RuntimeInfoSchema } from "../../api/types/introspection_pb.js";
import { Code, codeOf, messageOf } from "../../pkg/errdefs/errdefs.js";
import { BERTH_VERSION, REVISION } from "../../version.js";
import { deleteBundle } from "./delete.js";
import { parseFlags, type ShimFlags } from "./flags.js";
import { shimLogger } from "./log.js";
import { serve } from "./server.js";
import { start } from "./start.js";

const NAME = "containerd-shim-berth-v2";
const RUNTIME_TYPE = "io.containerd.berth.v2";
/** containerd's own bound on what it reads from a shim's stdin. */
const MAX_STDIN = 10 << 20;

async function main(argv: readonly string[]): Promise<void> {
  let flags: ShimFlags;
  try {
    flags = parseFlags(argv);
  } catch (err) {
    process.stderr.write(`${NAME}: ${messageOf(err)}\n`);
    process.exitCode = 2;
    return;
  }
  if (flags.version) {
    process.stdout.write(`${NAME}:\n  Version:  ${BERTH_VERSION}\n  Revision: ${REVISION}\n\n`);
    return;
  }
  if (flags.info) {
    writeAll(runtimeInfo(readStdin()));
    return;
  }
  if (!flags.namespace) throw new Error("shim namespace cannot be empty");
  switch (flags.action) {
    case "start":
      writeAll(await start(flags, readStdin()));
      return;
    case "delete": {
      const logger = shimLogger(2, flags.debug ? "debug" : "warn", {
        namespace: flags.namespace,
        id: flags.id,
      });
      writeAll(await deleteBundle(flags, logger));
      return;
    }
    case "":
      await serve(flags);
      return;
    default:
      throw new Error(`unknown action ${JSON.stringify(flags.action)} (expected start or delete)`);
  }
}

/**
 * `-info`: the shim's name and version, and the runtime options it was given (an Any on stdin)
 * echoed back, as the runc shim answers. Runtime features are not reported yet.
 */
function runtimeInfo(stdin: Uint8Array): Uint8Array {
  return toBinary(
    RuntimeInfoSchema,
    create(RuntimeInfoSchema, {
      name: RUNTIME_TYPE,
      version: { version: BERTH_VERSION, revision: REVISION },
      ...(stdin.length > 0 ? { options: fromBinary(AnySchema, stdin) } : {}),
    }),
  );
}

/** All of stdin, unless it is a terminal (a person running the command by hand sends nothing). */
function readStdin(): Uint8Array {
  if (process.stdin.isTTY) return new Uint8Array();
  let data: Buffer;
  try {
    data = readFileSync(0);
  } catch {
    return new Uint8Array();
  }
  if (data.length > MAX_STDIN) throw new Error(`stdin holds more than ${MAX_STDIN} bytes`);
  return data;
}

/** Writes to stdout synchronously: the daemon reads it whole once this process exits. */
function writeAll(data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += writeSync(1, data, off);
}

try {
  await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`${NAME}: ${messageOf(err)}\n`);
  process.exitCode = codeOf(err) === Code.InvalidArgument ? 2 : 1;
}
