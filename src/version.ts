// Berth's version, and the containerd API level it serves (reported by the Version service,
// where clients compare it with containerd's releases).
declare const __BERTH_REVISION__: string | undefined;

export const BERTH_VERSION = "0.1.0";
export const CONTAINERD_API_VERSION = "2.1.0";
/** What the Version service answers: containerd's API level, with Berth's as build metadata. */
export const SERVER_VERSION = `v${CONTAINERD_API_VERSION}+berth.${BERTH_VERSION}`;
export const REVISION = typeof __BERTH_REVISION__ === "string" ? __BERTH_REVISION__ : "unknown";
