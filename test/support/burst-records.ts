// The records create-burst.ts writes, derived from their sequence number so that a reader can
// tell a complete record from a damaged one.
import { create } from "@bufbuild/protobuf";
import { type Container, ContainerSchema } from "../../src/api/services/containers/v1/containers_pb.js";
import { type Image, ImageSchema } from "../../src/api/services/images/v1/images_pb.js";

export const burstImageName = (n: number) => `registry.example/burst/img:${n}`;
export const burstContainerId = (n: number) => `burst-${n}`;

export const burstImage = (n: number): Image =>
  create(ImageSchema, {
    name: burstImageName(n),
    labels: { seq: String(n), pad: "p".repeat(512) },
    target: {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: `sha256:${n.toString(16).padStart(64, "0")}`,
      size: BigInt(n + 1),
      annotations: { seq: String(n) },
    },
  });

export const burstContainer = (n: number): Container =>
  create(ContainerSchema, {
    id: burstContainerId(n),
    labels: { seq: String(n) },
    image: burstImageName(n - 1),
    runtime: { name: "io.containerd.runc.v2" },
    spec: {
      typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Spec",
      value: new TextEncoder().encode(
        JSON.stringify({ ociVersion: "1.1.0", hostname: `h${n}`, pad: "x".repeat(2048) }),
      ),
    },
    snapshotter: "overlayfs",
    snapshotKey: burstContainerId(n),
  });
