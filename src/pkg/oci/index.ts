// The OCI runtime spec: containerd's defaults, spec options, image config, users, seccomp, validation.
export * from "./capabilities.js";
export * from "./defaults.js";
export * from "./devices.js";
export * from "./image-config.js";
export * from "./mount-flag.js";
export * from "./options.js";
export * from "./privileged.js";
export * from "./rootfs.js";
export * from "./seccomp.js";
export type * from "./spec.js";
export * from "./user.js";
export * from "./validate.js";
