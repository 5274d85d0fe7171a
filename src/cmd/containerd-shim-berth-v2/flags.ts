// The shim's command line, as containerd passes it: Go `flag` package syntax (`-name value`,
// `-name=value`, `--name`, bare boolean flags), flags first, then the action (`start`,
// `delete`, or none for the long-lived server).
import { invalidArgument } from "../../pkg/errdefs/errdefs.js";

export interface ShimFlags {
  namespace: string;
  id: string;
  /** containerd's (or berthd's) gRPC address; with the namespace and group it names the socket. */
  address: string;
  /** The bundle directory (`delete` only); the working directory when not given. */
  bundle: string;
  /** The socket the server listens on (server mode); computed from the others when not given. */
  socket: string;
  /** Accepted for compatibility: events go to TTRPC_ADDRESS, never through this binary. */
  publishBinary: string;
  debug: boolean;
  version: boolean;
  info: boolean;
  /** `start`, `delete`, or "" for the server. */
  action: string;
}

const STRING_FLAGS = {
  namespace: "namespace",
  id: "id",
  address: "address",
  bundle: "bundle",
  socket: "socket",
  "publish-binary": "publishBinary",
  "debug-socket": undefined,
} as const satisfies Record<string, keyof ShimFlags | undefined>;

const BOOL_FLAGS = {
  debug: "debug",
  v: "version",
  version: "version",
  info: "info",
} as const satisfies Record<string, keyof ShimFlags>;

export function parseFlags(argv: readonly string[]): ShimFlags {
  const flags: ShimFlags = {
    namespace: "",
    id: "",
    address: "",
    bundle: "",
    socket: "",
    publishBinary: "",
    debug: false,
    version: false,
    info: false,
    action: "",
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      i++;
      break;
    }
    if (!arg.startsWith("-") || arg === "-") break;
    const body = arg.slice(arg.startsWith("--") ? 2 : 1);
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const inline = eq < 0 ? undefined : body.slice(eq + 1);
    if (name in BOOL_FLAGS) {
      const key = BOOL_FLAGS[name as keyof typeof BOOL_FLAGS];
      flags[key] = parseBool(name, inline ?? "true");
    } else if (name in STRING_FLAGS) {
      let value = inline;
      if (value === undefined) {
        if (i + 1 >= argv.length) throw invalidArgument(`flag needs an argument: -${name}`);
        value = argv[++i]!;
      }
      const key = STRING_FLAGS[name as keyof typeof STRING_FLAGS];
      if (key) flags[key] = value;
    } else {
      throw invalidArgument(`flag provided but not defined: -${name}`);
    }
  }
  flags.action = argv[i] ?? "";
  return flags;
}

function parseBool(name: string, value: string): boolean {
  if (["1", "t", "T", "true", "TRUE", "True"].includes(value)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(value)) return false;
  throw invalidArgument(`invalid boolean value ${JSON.stringify(value)} for -${name}`);
}
