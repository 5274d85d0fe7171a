import assert from "node:assert/strict";
import { test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { ImageSchema, ListImagesResponseSchema } from "../../api/services/images/v1/images_pb.js";
import { repeatedMessageField } from "./wire.js";

test("a repeated field assembled from encoded elements equals the runtime's encoding", () => {
  const images = [0, 1, 300].map((n) =>
    create(ImageSchema, {
      name: `img-${n}-${"x".repeat(n)}`,
      labels: { n: String(n) },
      target: { mediaType: "m", digest: `sha256:${n}`, size: BigInt(n) },
    }),
  );
  const expected = toBinary(ListImagesResponseSchema, create(ListImagesResponseSchema, { images }));
  const assembled = repeatedMessageField(
    1,
    images.map((i) => toBinary(ImageSchema, i)),
  );
  assert.deepEqual(assembled, expected);
  assert.deepEqual(repeatedMessageField(1, []), new Uint8Array(0));
});
