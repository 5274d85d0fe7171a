// A privileged container (`--privileged`): every capability this process holds, nothing masked
// or read-only, writable sysfs and cgroupfs, no LSM label or seccomp filter; and, as `ctr run`
// adds unless told otherwise, every host device, all allowed.
import { currentCapabilities } from "./capabilities.js";
import { withAllDevicesAllowed, withHostDevices } from "./devices.js";
import {
  compose,
  type SpecOpt,
  withApparmorProfile,
  withCapabilities,
  withMaskedPaths,
  withReadonlyPaths,
  withSeccompUnconfined,
  withSelinuxLabel,
  withWriteableCgroupfs,
  withWriteableSysfs,
} from "./options.js";

/** Grants the container the effective capabilities of this process. */
export const withAllCurrentCapabilities: SpecOpt = async (spec, ctx) =>
  withCapabilities(await currentCapabilities())(spec, ctx);

/** containerd's WithPrivileged: capabilities and confinement, devices unchanged. */
export const withPrivileged: SpecOpt = compose(
  withAllCurrentCapabilities,
  withMaskedPaths(undefined),
  withReadonlyPaths(undefined),
  withWriteableSysfs,
  withWriteableCgroupfs,
  withSelinuxLabel(""),
  withApparmorProfile(""),
  withSeccompUnconfined,
);

/** `ctr run --privileged`: withPrivileged plus the host's devices (unless `withoutHostDevices`). */
export const withPrivilegedRun = (withoutHostDevices = false): SpecOpt =>
  withoutHostDevices ? withPrivileged : compose(withPrivileged, withAllDevicesAllowed, withHostDevices);
