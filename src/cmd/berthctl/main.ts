// berthctl: the command-line client for berthd (and for containerd, on its socket).
import { Command, Option } from "commander";
import { BerthClient, DEFAULT_ADDRESS, DEFAULT_NAMESPACE } from "../../client/client.js";
import { BERTH_VERSION } from "../../version.js";
import { containersCommand } from "./commands/containers.js";
import { contentCommand } from "./commands/content.js";
import { eventsCommand } from "./commands/events.js";
import { gcCommand } from "./commands/gc.js";
import { imagesCommand } from "./commands/images.js";
import { introspectionCommands } from "./commands/introspection.js";
import { leasesCommand } from "./commands/leases.js";
import { namespacesCommand } from "./commands/namespaces.js";
import { runCommand } from "./commands/run.js";
import { snapshotsCommand } from "./commands/snapshots.js";
import { tasksCommand } from "./commands/tasks.js";
import type { Globals } from "./globals.js";
import type { Format } from "./output.js";

const program = new Command("berthctl")
  .description("command-line client for berthd")
  .version(BERTH_VERSION, "-v, --version")
  .option(
    "-a, --address <path>",
    "address of berthd's socket",
    process.env["BERTH_ADDRESS"] ?? DEFAULT_ADDRESS,
  )
  .option(
    "-n, --namespace <name>",
    "namespace for namespaced commands",
    process.env["BERTH_NAMESPACE"] ?? process.env["CONTAINERD_NAMESPACE"] ?? DEFAULT_NAMESPACE,
  )
  .option("--timeout <seconds>", "deadline for each call", "30")
  .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
  // Global options go before the command, so that `run IMAGE ID sh -c ...` passes -c to sh.
  .enablePositionalOptions();

let client: BerthClient | undefined;
const globals = (): Globals => {
  const o = program.opts<{ address: string; namespace: string; timeout: string; format: Format }>();
  return {
    format: o.format,
    client: () => {
      client ??= new BerthClient({
        address: o.address,
        namespace: o.namespace,
        timeoutMs: Number(o.timeout) * 1000,
      });
      return client;
    },
  };
};

introspectionCommands(program, globals);
namespacesCommand(program, globals);
leasesCommand(program, globals);
gcCommand(program, globals);
contentCommand(program, globals);
imagesCommand(program, globals);
containersCommand(program, globals);
snapshotsCommand(program, globals);
eventsCommand(program, globals);
runCommand(program, globals);
tasksCommand(program, globals);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`berthctl: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  client?.close();
}
