#!/usr/bin/env node
// Entry point for the berthd command: the bundled build under dist/bundle (npm run build).
import { existsSync } from "node:fs";
import module from "node:module";
import { arch } from "node:os";
import v8 from "node:v8";

module.enableCompileCache?.();
// After each full collection V8 lets the heap grow to 4 times what survived before the next one
// (by default about 1.1-2 times). A pull or unpack churns through buffers and promises: with the
// default, a 200 MB pull ran ~24 full collections and V8's GC threads (mostly concurrent
// marking) used ~20% of the machine's CPU (perf record); with this, 3-4, and the pull is ~10%
// faster. Idle memory is unchanged
// (idle collections still shrink the heap). Settable at run time, unlike the heap size flags.
v8.setFlagsFromString("--heap-growing-percent=300");
// Tell lmdb's native loader the C library directly instead of probing for it, and keep
// msgpackr's optional native string extractor unloaded: together they cost ~20 ms at start.
process.env.LIBC ??= existsSync(`/lib/ld-musl-${arch() === "x64" ? "x86_64" : arch()}.so.1`)
  ? "musl"
  : "glibc";
process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED ??= "true";
await import("../dist/bundle/berthd.mjs");
