// Image verifiers, as containerd 2's: before a pull fetches anything, each verifier judges the
// resolved image (its name and root descriptor); the pull goes ahead only if every one allows
// it. A verifier that cannot judge (fails to run, times out) blocks the pull too.
import { BerthError, Code, codeOf, messageOf } from "../../pkg/errdefs/errdefs.js";
import type { OciDescriptor } from "../images/manifest.js";

export interface Judgement {
  ok: boolean;
  reason: string;
}

export interface ImageVerifier {
  /** Throws when no judgement could be made. */
  verifyImage(name: string, desc: OciDescriptor, signal?: AbortSignal): Promise<Judgement>;
}

/**
 * Asks every verifier (keyed by plugin id) about the image; throws at the first one that denies
 * it or fails, with containerd's messages. A denial is Unknown on the wire, as containerd's; a
 * failure keeps its own code.
 */
export async function verifyPull(
  verifiers: ReadonlyMap<string, ImageVerifier>,
  name: string,
  desc: OciDescriptor,
  signal?: AbortSignal,
): Promise<void> {
  for (const [id, verifier] of verifiers) {
    let judgement: Judgement;
    try {
      judgement = await verifier.verifyImage(name, desc, signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new BerthError(
        codeOf(err),
        `blocking pull of ${name} with digest ${desc.digest}: image verifier ${id} returned error: ${messageOf(err)}`,
        { cause: err },
      );
    }
    if (!judgement.ok)
      throw new BerthError(
        Code.Unknown,
        `image verifier ${id} blocked pull of ${name} with digest ${desc.digest} for reason: ${judgement.reason}`,
      );
  }
}
