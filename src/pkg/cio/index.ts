// Container IO, both sides of containerd's conventions: the client's FIFO sets and log URIs, and
// the shim's wiring of a process's stdio to FIFOs, log files, logging binaries and ptys.

export * from "./binary-logger.js";
export * from "./client.js";
export * from "./config.js";
export * from "./console-io.js";
export * from "./pipe-io.js";
export * from "./uri.js";
