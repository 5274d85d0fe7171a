// containerd-shim-berth-v2: Berth's runtime v2 shim. It does not run containers yet; until it
// does, every invocation fails with a clear message rather than pretending to work.
import { BERTH_VERSION } from "../../version.js";

if (process.argv.includes("-v") || process.argv.includes("--version")) {
  process.stdout.write(`containerd-shim-berth-v2 ${BERTH_VERSION}\n`);
} else {
  process.stderr.write(
    "containerd-shim-berth-v2: the berth shim cannot run containers yet; use io.containerd.runc.v2 meanwhile\n",
  );
  process.exitCode = 1;
}
