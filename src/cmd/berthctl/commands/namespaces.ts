import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import { NamespaceSchema } from "../../../api/services/namespaces/v1/namespace_pb.js";
import type { Globals } from "../globals.js";
import { formatLabels, parseLabels, printJson, printTable } from "../output.js";

export function namespacesCommand(program: Command, globals: () => Globals): void {
  const ns = program.command("namespaces").alias("namespace").alias("ns").description("manage namespaces");

  ns.command("create <name> [labels...]")
    .description("create a namespace, with optional key=value labels")
    .action(async (name: string, labels: string[]) => {
      const g = globals();
      await g
        .client()
        .namespaces.create({ namespace: create(NamespaceSchema, { name, labels: parseLabels(labels) }) });
    });

  ns.command("ls")
    .alias("list")
    .description("list namespaces")
    .option("-q, --quiet", "print only names")
    .action(async (opts: { quiet?: boolean }) => {
      const g = globals();
      const { namespaces } = await g.client().namespaces.list({});
      if (g.format === "json") return printJson(namespaces.map(({ name, labels }) => ({ name, labels })));
      if (opts.quiet) return void process.stdout.write(namespaces.map((n) => `${n.name}\n`).join(""));
      printTable(
        ["NAME", "LABELS"],
        namespaces.map((n) => [n.name, formatLabels(n.labels)]),
      );
    });

  ns.command("rm <names...>")
    .alias("remove")
    .description("remove one or more namespaces (they must be empty)")
    .action(async (names: string[]) => {
      const client = globals().client();
      let failed = false;
      for (const name of names) {
        try {
          await client.namespaces.delete({ name });
          process.stdout.write(`${name}\n`);
        } catch (err) {
          failed = true;
          process.stderr.write(`unable to delete ${name}: ${(err as Error).message}\n`);
        }
      }
      if (failed) process.exitCode = 1;
    });

  ns.command("label <name> [labels...]")
    .description("set (key=value) or clear (key=) labels on a namespace")
    .action(async (name: string, labels: string[]) => {
      const parsed = parseLabels(labels);
      const paths = Object.keys(parsed).map((k) => `labels.${k}`);
      const { namespace } = await globals()
        .client()
        .namespaces.update({
          namespace: create(NamespaceSchema, { name, labels: parsed }),
          updateMask: create(FieldMaskSchema, { paths }),
        });
      process.stdout.write(`${formatLabels(namespace?.labels ?? {})}\n`);
    });
}
