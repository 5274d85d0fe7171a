// berthctl content: list, read, ingest, label and remove blobs, and list active ingests.
import { once } from "node:events";
import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema, timestampDate } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import { Content, InfoSchema } from "../../../api/services/content/v1/content_pb.js";
import { ingest } from "../../../client/content.js";
import type { Globals } from "../globals.js";
import { formatLabels, parseLabels, printJson, printTable } from "../output.js";

export function contentCommand(program: Command, globals: () => Globals): void {
  const content = program.command("content").description("manage content (blobs and ingests)");
  const service = () => globals().client().service(Content);

  content
    .command("ls [filters...]")
    .alias("list")
    .description("list blobs (filters: digest==..., labels.key==...)")
    .option("-q, --quiet", "print only digests")
    .action(async (filters: string[], opts: { quiet?: boolean }) => {
      const g = globals();
      const infos = [];
      for await (const res of service().list({ filters })) infos.push(...res.info);
      if (g.format === "json") {
        return printJson(
          infos.map((i) => ({
            digest: i.digest,
            size: Number(i.size),
            createdAt: i.createdAt && timestampDate(i.createdAt),
            updatedAt: i.updatedAt && timestampDate(i.updatedAt),
            labels: i.labels,
          })),
        );
      }
      if (opts.quiet) return void process.stdout.write(infos.map((i) => `${i.digest}\n`).join(""));
      printTable(
        ["DIGEST", "SIZE", "AGE", "LABELS"],
        infos.map((i) => [
          i.digest,
          humanSize(Number(i.size)),
          i.createdAt ? age(timestampDate(i.createdAt)) : "-",
          formatLabels(i.labels) || "-",
        ]),
      );
    });

  content
    .command("get <digest>")
    .description("write a blob's bytes to stdout")
    .action(async (digest: string) => {
      for await (const res of service().read({ digest })) {
        if (!process.stdout.write(res.data)) await once(process.stdout, "drain");
      }
    });

  content
    .command("ingest <ref>")
    .description("write stdin into the content store under ref and commit it")
    .option("--expected-size <bytes>", "refuse the commit unless the size matches", parseSize)
    .option("--expected-digest <digest>", "refuse the commit unless the digest matches")
    .action(async (ref: string, opts: { expectedSize?: number; expectedDigest?: string }) => {
      const bar = process.stderr.isTTY ? progressBar(opts.expectedSize ?? 0) : undefined;
      const done = await ingest(service(), process.stdin, {
        ref,
        expectedSize: opts.expectedSize,
        expectedDigest: opts.expectedDigest,
        onProgress: bar?.update,
      });
      bar?.finish(done.size);
      process.stdout.write(`${done.digest}\n`);
    });

  content
    .command("active [filters...]")
    .description("list ingests in progress (filter: ref==...)")
    .action(async (filters: string[]) => {
      const g = globals();
      const { statuses } = await service().listStatuses({ filters });
      if (g.format === "json") {
        return printJson(
          statuses.map((s) => ({
            ref: s.ref,
            offset: Number(s.offset),
            total: Number(s.total),
            startedAt: s.startedAt && timestampDate(s.startedAt),
            updatedAt: s.updatedAt && timestampDate(s.updatedAt),
          })),
        );
      }
      printTable(
        ["REF", "SIZE", "TOTAL", "AGE"],
        statuses.map((s) => [
          s.ref,
          humanSize(Number(s.offset)),
          s.total > 0n ? humanSize(Number(s.total)) : "-",
          s.startedAt ? age(timestampDate(s.startedAt)) : "-",
        ]),
      );
    });

  content
    .command("rm <digests...>")
    .alias("remove")
    .description("remove blobs from the namespace (their data goes at the next garbage collection)")
    .action(async (digests: string[]) => {
      const client = service();
      let failed = false;
      for (const digest of digests) {
        try {
          await client.delete({ digest });
          process.stdout.write(`${digest}\n`);
        } catch (err) {
          failed = true;
          process.stderr.write(`unable to delete ${digest}: ${(err as Error).message}\n`);
        }
      }
      if (failed) process.exitCode = 1;
    });

  content
    .command("label <digest> [labels...]")
    .description("set (key=value) or clear (key=) labels on a blob")
    .action(async (digest: string, labels: string[]) => {
      const parsed = parseLabels(labels);
      const paths = Object.keys(parsed).map((k) => `labels.${k}`);
      const client = service();
      const { info } =
        paths.length === 0
          ? await client.info({ digest })
          : await client.update({
              info: create(InfoSchema, { digest, labels: parsed }),
              updateMask: create(FieldMaskSchema, { paths }),
            });
      process.stdout.write(`${formatLabels(info?.labels ?? {})}\n`);
    });
}

function parseSize(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`invalid size ${JSON.stringify(value)}`);
  return n;
}

const UNITS = ["B", "kB", "MB", "GB", "TB", "PB"];

/** Decimal sizes with 4 significant digits, as ctr prints them ("1.049MB"). */
function humanSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${Number(value.toPrecision(4))}${UNITS[unit]}`;
}

function age(since: Date): string {
  const s = Math.max(0, Math.round((Date.now() - since.getTime()) / 1000));
  if (s < 60) return `${s} second${s === 1 ? "" : "s"}`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} minute${m === 1 ? "" : "s"}`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} hour${h === 1 ? "" : "s"}`;
  return `${Math.round(h / 24)} days`;
}

/** A one-line progress bar on stderr, redrawn at most ten times a second. */
function progressBar(total: number) {
  const started = performance.now();
  let drawn = 0;
  const draw = (offset: number) => {
    const rate = offset / Math.max(0.001, (performance.now() - started) / 1000);
    const width = 30;
    const filled = total > 0 ? Math.min(width, Math.round((offset / total) * width)) : 0;
    const bar = total > 0 ? `[${"=".repeat(filled)}${" ".repeat(width - filled)}] ` : "";
    const of = total > 0 ? ` / ${humanSize(total)}` : "";
    process.stderr.write(`\r${bar}${humanSize(offset)}${of}  ${humanSize(rate)}/s\x1b[K`);
  };
  return {
    update: (offset: number) => {
      const now = performance.now();
      if (now - drawn < 100) return;
      drawn = now;
      draw(offset);
    },
    finish: (size: number) => {
      draw(size);
      process.stderr.write("\n");
    },
  };
}
