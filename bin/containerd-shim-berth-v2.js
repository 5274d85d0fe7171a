#!/usr/bin/env node
// Entry point for the containerd-shim-berth-v2 command: the bundled build under dist/bundle (npm run build).
import module from "node:module";

module.enableCompileCache?.();
await import("../dist/bundle/containerd-shim-berth-v2.mjs");
