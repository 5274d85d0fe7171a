// berthd: the daemon. `berthd [flags]` serves; `berthd config default|migrate` print configs.
import { Command } from "commander";
import { messageOf } from "../../pkg/errdefs/errdefs.js";
import { createLogger, parseLogLevel } from "../../pkg/log/log.js";
import { builtinPlugins } from "../../plugins/builtins.js";
import {
  DEFAULT_CONFIG_PATH,
  defaultConfigToml,
  effectivePluginConfig,
  loadConfig,
  migrateConfigToml,
} from "../../server/config/index.js";
import { BerthServer } from "../../server/server.js";
import { SERVER_VERSION } from "../../version.js";

interface DaemonFlags {
  config?: string;
  address?: string;
  root?: string;
  state?: string;
  logLevel?: string;
}

const program = new Command("berthd")
  .description("Berth: a containerd-compatible container runtime daemon")
  .version(SERVER_VERSION, "-v, --version")
  .option("-c, --config <path>", `path to the configuration file (default ${DEFAULT_CONFIG_PATH})`)
  .option("-a, --address <path>", "address for berthd's gRPC server")
  .option("--root <dir>", "berthd root directory")
  .option("--state <dir>", "berthd state directory")
  .option("-l, --log-level <level>", "set the logging level [trace, debug, info, warn, error, fatal, panic]")
  .action(async (flags: DaemonFlags) => serve(flags));

const configCmd = program.command("config").description("information on berthd's configuration");
configCmd
  .command("default")
  .description("print the full default configuration (version 3)")
  .action(() => {
    process.stdout.write(defaultConfigToml(builtinPlugins));
  });
configCmd
  .command("migrate")
  .description("print the configuration (from --config) migrated to version 3")
  .action(async () => {
    const path = program.opts<DaemonFlags>().config ?? DEFAULT_CONFIG_PATH;
    process.stdout.write(await migrateConfigToml(path, builtinPlugins));
  });

async function serve(flags: DaemonFlags): Promise<void> {
  const { config, warnings } = await loadConfig(flags.config ?? DEFAULT_CONFIG_PATH, {
    explicit: flags.config !== undefined,
    registrations: builtinPlugins,
  });
  if (flags.address) {
    config.grpc.address = flags.address;
    config.ttrpc.address = `${flags.address}.ttrpc`;
  }
  if (flags.root) config.root = flags.root;
  if (flags.state) config.state = flags.state;
  const log = createLogger(parseLogLevel(flags.logLevel ?? (config.debug.level || "info")), "berthd");
  const server = await BerthServer.start({
    config,
    registrations: builtinPlugins,
    pluginConfig: (r) => effectivePluginConfig(config, r),
    warnings,
    log,
  });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping berthd");
    try {
      await server.stop();
      process.exit(0);
    } catch (err) {
      log.error({ err }, "stop failed");
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`berthd: ${messageOf(err)}\n`);
  process.exit(1);
}
