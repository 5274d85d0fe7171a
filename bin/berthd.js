#!/usr/bin/env node
// Entry point for the berthd command: the bundled build under dist/bundle (npm run build).
import module from "node:module";

module.enableCompileCache?.();
await import("../dist/bundle/berthd.mjs");
