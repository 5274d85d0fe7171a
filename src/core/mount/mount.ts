// Mounting containerd mount lists onto a directory (implemented in the filesystems issue).
import type { Mount } from "./types.js";

/** Mounts every mount in order at target (each on target/<mount.target>). */
export declare function mountAll(mounts: readonly Mount[], target: string): Promise<void>;
/** Unmounts everything mounted at target (MNT_DETACH as a fallback when busy). */
export declare function unmountAll(target: string): Promise<void>;
/** Mounts at a fresh temporary directory, runs fn(dir), then unmounts and removes the directory. */
export declare function withTempMount<T>(mounts: readonly Mount[], fn: (dir: string) => Promise<T>): Promise<T>;
