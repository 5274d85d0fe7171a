#!/usr/bin/env node
// Entry point for the berthd command: the bundled build under dist/bundle (npm run build).
import { existsSync } from "node:fs";
import module from "node:module";
import { arch } from "node:os";

module.enableCompileCache?.();
// Tell lmdb's native loader the C library directly instead of probing for it, and keep
// msgpackr's optional native string extractor unloaded: together they cost ~20 ms at start.
process.env.LIBC ??= existsSync(`/lib/ld-musl-${arch() === "x64" ? "x86_64" : arch()}.so.1`)
  ? "musl"
  : "glibc";
process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED ??= "true";
await import("../dist/bundle/berthd.mjs");
