// version, plugins, info and deprecations: what the daemon says about itself.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import type { Plugin } from "../../../api/services/introspection/v1/introspection_pb.js";
import { BERTH_VERSION, REVISION } from "../../../version.js";
import type { Globals } from "../globals.js";
import { printJson, printTable } from "../output.js";

const platformString = (p: { os: string; architecture: string; variant: string }) =>
  [p.os, p.architecture, p.variant].filter(Boolean).join("/");

// "skip plugin" in an init error is how a plugin says it does not apply here.
const pluginStatus = (p: Plugin) =>
  p.initErr === undefined ? "ok" : p.initErr.message.includes("skip plugin") ? "skip" : "error";

export function introspectionCommands(program: Command, globals: () => Globals): void {
  program
    .command("version")
    .description("print the client and server versions")
    .action(async () => {
      const g = globals();
      const server = await g.client().version.version({});
      if (g.format === "json") {
        return printJson({
          client: { version: BERTH_VERSION, revision: REVISION },
          server: { version: server.version, revision: server.revision },
        });
      }
      process.stdout.write(
        `Client:\n  Version:  ${BERTH_VERSION}\n  Revision: ${REVISION}\n\nServer:\n  Version:  ${server.version}\n  Revision: ${server.revision}\n`,
      );
    });

  const plugins = program.command("plugins").alias("plugin").description("inspect the daemon's plugins");
  plugins
    .command("ls [filters...]")
    .alias("list")
    .description("list plugins, optionally filtered (e.g. type==io.containerd.grpc.v1)")
    .option("-d, --detailed", "show exports, capabilities and init errors")
    .action(async (filters: string[], opts: { detailed?: boolean }) => {
      const g = globals();
      const res = await g.client().introspection.plugins({ filters });
      if (g.format === "json") {
        return printJson(
          res.plugins.map((p) => ({
            type: p.type,
            id: p.id,
            requires: p.requires,
            platforms: p.platforms.map(platformString),
            exports: p.exports,
            capabilities: p.capabilities,
            status: pluginStatus(p),
            error: p.initErr?.message,
          })),
        );
      }
      if (opts.detailed) {
        for (const p of res.plugins) {
          process.stdout.write(`Type:          ${p.type}\nID:            ${p.id}\n`);
          if (p.requires.length) process.stdout.write(`Requires:      ${p.requires.join(", ")}\n`);
          if (p.platforms.length)
            process.stdout.write(`Platforms:     ${p.platforms.map(platformString).join(", ")}\n`);
          for (const [k, v] of Object.entries(p.exports)) process.stdout.write(`Exports:       ${k}=${v}\n`);
          if (p.capabilities.length) process.stdout.write(`Capabilities:  ${p.capabilities.join(", ")}\n`);
          if (p.initErr) process.stdout.write(`Error:         ${p.initErr.message}\n`);
          process.stdout.write("\n");
        }
        return;
      }
      printTable(
        ["TYPE", "ID", "PLATFORMS", "STATUS"],
        res.plugins.map((p) => [
          p.type,
          p.id,
          p.platforms.map(platformString).join(",") || "-",
          pluginStatus(p),
        ]),
      );
    });

  program
    .command("info")
    .description("print the server's identity and deprecation warnings")
    .action(async () => {
      const g = globals();
      const client = g.client();
      const [server, version] = await Promise.all([
        client.introspection.server({}),
        client.version.version({}),
      ]);
      printJson({
        server: {
          uuid: server.uuid,
          pid: server.pid,
          pidns: server.pidns,
          version: version.version,
          revision: version.revision,
        },
        deprecations: server.deprecations.map((d) => ({
          id: d.id,
          message: d.message,
          lastOccurrence: d.lastOccurrence ? timestampDate(d.lastOccurrence) : undefined,
        })),
      });
    });

  const deprecations = program
    .command("deprecations")
    .description("deprecated features the daemon has seen in use");
  deprecations
    .command("list")
    .alias("ls")
    .description("list deprecation warnings")
    .action(async () => {
      const g = globals();
      const { deprecations: list } = await g.client().introspection.server({});
      const rows = list.map((d) => ({
        id: d.id,
        message: d.message,
        lastOccurrence: d.lastOccurrence ? timestampDate(d.lastOccurrence).toISOString() : "",
      }));
      if (g.format === "json") return printJson(rows);
      printTable(
        ["ID", "LAST OCCURRENCE", "MESSAGE"],
        rows.map((r) => [r.id, r.lastOccurrence, r.message]),
      );
    });
}
