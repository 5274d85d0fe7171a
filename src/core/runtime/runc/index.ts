// The OCI runtime CLI (runc or crun) and its console socket, for the shim.
export * from "./console-socket.js";
export * from "./errors.js";
export * from "./runtime.js";
export * from "./types.js";
