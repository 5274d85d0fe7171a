// Checkpoint needs CRIU, which `runc checkpoint` runs. Taking one is not implemented: CRIU 3.17
// cannot even start on the kernels this was built on (`criu check` fails reading the vDSO). The
// refusal carries CRIU's own words, from `criu check` run at the time, so a caller learns what
// stands in the way on their host.
import { execFile } from "node:child_process";
import { unimplemented } from "../../pkg/errdefs/errdefs.js";

const CRIU_CHECK_TIMEOUT_MS = 10_000;

/** The Unimplemented error a Checkpoint of container id answers, naming CRIU's state. */
export async function checkpointRefusal(id: string): Promise<Error> {
  return unimplemented(
    `containerd-shim-berth-v2: checkpoint of ${id} is not supported: ${await criuState()}`,
  );
}

/** What `criu check` says: its errors, or that it passed; CRIU missing is said so. */
function criuState(): Promise<string> {
  return new Promise((resolve) => {
    execFile("criu", ["check"], { timeout: CRIU_CHECK_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (!err) {
        resolve("CRIU works here (criu check passed), but this shim does not take checkpoints");
        return;
      }
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        resolve("it needs CRIU, and criu is not installed");
        return;
      }
      const errors = `${stdout}\n${stderr}`
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => /error/i.test(l));
      resolve(`it needs CRIU, and criu check fails here: ${errors.join("; ") || err.message}`);
    });
  });
}
