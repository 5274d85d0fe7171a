// berthctl gc: runs garbage collection now. containerd has no RPC for it; like ctr users do,
// berthctl creates a short-lived lease and deletes it synchronously, which makes the daemon
// collect before answering (works against containerd too).
import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import { Leases } from "../../../api/services/leases/v1/leases_pb.js";
import { GcLabels } from "../../../core/metadata/keys.js";
import type { Globals } from "../globals.js";
import { printJson } from "../output.js";
import { expiresIn } from "./leases.js";

export function gcCommand(program: Command, globals: () => Globals): void {
  program
    .command("gc")
    .description("run garbage collection now and wait for it to finish")
    .action(async () => {
      const g = globals();
      const leases = g.client().service(Leases);
      const id = `berthctl-gc-${randomBytes(6).toString("hex")}`;
      // If the delete never happens, the lease still expires on its own.
      await leases.create({ id, labels: { [GcLabels.expire]: expiresIn(3_600_000) } });
      const started = performance.now();
      await leases.delete({ id, sync: true });
      const ms = performance.now() - started;
      if (g.format === "json") return printJson({ elapsedMs: Math.round(ms) });
      process.stdout.write(`garbage collection done in ${ms.toFixed(0)} ms\n`);
    });
}
