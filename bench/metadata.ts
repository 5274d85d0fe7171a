// Metadata benchmark, berthd against containerd on this machine: both daemons run side by side
// (private root, state and socket each), each holding 10,000 images and 10,000 containers in
// the "default" namespace; then, interleaved over several rounds, the rate of
// Containers.Create+Delete pairs and of Images.List calls (each answering all 10,000 images)
// from the same TypeScript client, with the daemon's CPU time per call (from /proc), which
// varies less than rates on a busy machine. Images.List is measured twice: through the client,
// which decodes every answer (2.7 MB, the client's own CPU often the limit), and over raw
// HTTP/2 with the answer counted, not decoded (the daemon's rate). Prints medians and the
// berthd/containerd ratios.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { ContainerSchema, Containers } from "../src/api/services/containers/v1/containers_pb.js";
import { ImageSchema, Images } from "../src/api/services/images/v1/images_pb.js";
import { BerthClient } from "../src/client/client.js";
import { callRate, median, rawCallRate, stop, subjects, untilReady } from "./support.js";

const RECORDS = Number(process.env["BENCH_RECORDS"] ?? 10_000);
const ROUNDS = Number(process.env["BENCH_RUNS"] ?? 5);
const LOAD_MS = Number(process.env["BENCH_LOAD_MS"] ?? 3000);
const WRITES_IN_FLIGHT = 16;
const LIST_PATH = "/containerd.services.images.v1.Images/List";
const EMPTY = new Uint8Array(0);
const LISTS_IN_FLIGHT = 4;

const SPEC = {
  typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Spec",
  value: new TextEncoder().encode(
    JSON.stringify({ ociVersion: "1.1.0", process: { args: ["sh"], cwd: "/" }, root: { path: "rootfs" } }),
  ),
};

const container = (id: string) =>
  create(ContainerSchema, {
    id,
    image: "docker.io/library/busybox:latest",
    labels: { "bench.kind": "metadata" },
    runtime: { name: "io.containerd.runc.v2" },
    spec: SPEC,
    snapshotter: "overlayfs",
    snapshotKey: id,
  });

const image = (n: number) =>
  create(ImageSchema, {
    name: `docker.io/bench/image-${n}:latest`,
    labels: { "bench.kind": "metadata", "containerd.io/distribution.source.docker.io": "bench/image" },
    target: {
      mediaType: "application/vnd.oci.image.index.v1+json",
      digest: `sha256:${n.toString(16).padStart(64, "0")}`,
      size: 1609n,
    },
  });

async function seed(address: string): Promise<void> {
  const client = new BerthClient({ address, namespace: "default", timeoutMs: 60_000 });
  try {
    const images = client.service(Images);
    const containers = client.service(Containers);
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (let n = next++; n < RECORDS; n = next++) {
          await images.create({ image: image(n) });
          await containers.create({ container: container(`seed-${n}`) });
        }
      }),
    );
  } finally {
    client.close();
  }
}

interface Figures {
  createDelete: number[];
  createDeleteCpu: number[];
  list: number[];
  listCpu: number[];
  rawList: number[];
  rawListCpu: number[];
}

/** CPU time (user + system) a process used so far, in milliseconds. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** Calls per second from rateOf(), and the daemon's CPU milliseconds per call. */
async function measure(r: { proc: ChildProcess }, rateOf: () => Promise<number>): Promise<[number, number]> {
  const before = cpuMs(r.proc.pid!);
  const rate = await rateOf();
  return [rate, (cpuMs(r.proc.pid!) - before) / ((rate * LOAD_MS) / 1000 + 1)];
}

const running = subjects.map((subject) => {
  const dir = mkdtempSync(join(tmpdir(), `bench-meta-${subject.name}-`));
  const address = join(dir, "d.sock");
  const figures: Figures = {
    createDelete: [],
    createDeleteCpu: [],
    list: [],
    listCpu: [],
    rawList: [],
    rawListCpu: [],
  };
  return { subject, dir, address, proc: subject.start(dir, address), figures };
});

try {
  for (const r of running) {
    await untilReady(r.address, r.proc);
    const t0 = performance.now();
    await seed(r.address);
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(`${r.subject.name}: seeded ${RECORDS} images and containers in ${seconds} s`);
  }
  let seq = 0;
  const createDelete = async (c: BerthClient) => {
    const id = `bench-${seq++}`;
    const containers = c.service(Containers);
    await containers.create({ container: container(id) });
    await containers.delete({ id });
  };
  const list = async (c: BerthClient) => {
    const { images } = await c.service(Images).list({});
    if (images.length !== RECORDS) throw new Error(`listed ${images.length} images`);
  };
  for (let round = 0; round < ROUNDS; round++) {
    for (const r of running) {
      const [pairs, pairCpu] = await measure(r, () =>
        callRate(r.address, createDelete, WRITES_IN_FLIGHT, LOAD_MS),
      );
      const [lists, listCpu] = await measure(r, () => callRate(r.address, list, LISTS_IN_FLIGHT, LOAD_MS));
      const [rawLists, rawListCpu] = await measure(r, async () => {
        const { rate, answerBytes } = await rawCallRate(
          r.address,
          LIST_PATH,
          EMPTY,
          LISTS_IN_FLIGHT,
          LOAD_MS,
        );
        if (answerBytes < RECORDS * 100)
          throw new Error(`${r.subject.name}: Images.List answered ${answerBytes} bytes`);
        return rate;
      });
      r.figures.createDelete.push(pairs);
      r.figures.createDeleteCpu.push(pairCpu);
      r.figures.list.push(lists);
      r.figures.listCpu.push(listCpu);
      r.figures.rawList.push(rawLists);
      r.figures.rawListCpu.push(rawListCpu);
    }
  }
} finally {
  for (const r of running) {
    await stop(r.proc);
    rmSync(r.dir, { recursive: true, force: true });
  }
}

const [b, c] = running.map((r) => r.figures) as [Figures, Figures];
console.log(
  `metadata benchmark: ${RECORDS} images and containers, ${ROUNDS} rounds of ${LOAD_MS} ms per rate ` +
    `(create+delete: ${WRITES_IN_FLIGHT} in flight; list: ${LISTS_IN_FLIGHT} in flight)`,
);
console.log(
  `${"metric (median)".padEnd(44)}${"berthd".padStart(12)}${"containerd".padStart(12)}${"ratio".padStart(9)}`,
);
for (const [name, key, note] of [
  ["Containers.Create+Delete pairs/s", "createDelete", "higher is better"],
  ["  daemon CPU ms per pair", "createDeleteCpu", "lower is better"],
  [`Images.List (${RECORDS} images) calls/s`, "list", "higher is better"],
  ["  daemon CPU ms per list", "listCpu", "lower is better"],
  ["Images.List, answer not decoded, calls/s", "rawList", "higher is better"],
  ["  daemon CPU ms per list", "rawListCpu", "lower is better"],
] as const) {
  const bv = median(b[key]);
  const cv = median(c[key]);
  console.log(
    `${name.padEnd(44)}${bv.toFixed(2).padStart(12)}${cv.toFixed(2).padStart(12)}${(bv / cv).toFixed(2).padStart(9)}  ${note}`,
  );
}
