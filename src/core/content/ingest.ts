// The on-disk layout of an ingest (a write in progress) in the local store, as containerd's:
// ingest/<sha256 of the ref>/ holding `data` (the bytes so far), `ref`, `startedat`,
// `updatedat` (RFC 3339 timestamps) and `total` (the expected size, when known).
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface IngestStatus {
  /** The ref the writer was opened with (the metadata layer's local ref). */
  localRef: string;
  /** Bytes written so far. */
  offset: number;
  /** Expected size, 0 when unknown. */
  total: number;
  startedAt: Date;
  updatedAt: Date;
}

/** The directory name of an ingest: a digest of its ref keeps paths short and uniform. */
export const ingestDirName = (ref: string) => createHash("sha256").update(ref).digest("hex");

export const ingestFiles = (dir: string) => ({
  data: join(dir, "data"),
  ref: join(dir, "ref"),
  startedAt: join(dir, "startedat"),
  updatedAt: join(dir, "updatedat"),
  total: join(dir, "total"),
});

export const isNotExist = (err: unknown) => (err as NodeJS.ErrnoException).code === "ENOENT";

/** The status of the ingest in dir; undefined when it has no data or ref file. */
export async function readIngestStatus(dir: string): Promise<IngestStatus | undefined> {
  const files = ingestFiles(dir);
  let data: Awaited<ReturnType<typeof stat>>;
  let localRef: string;
  try {
    data = await stat(files.data);
    localRef = await readFile(files.ref, "utf8");
  } catch (err) {
    if (isNotExist(err)) return undefined;
    throw err;
  }
  const startedAt = (await readTimestamp(files.startedAt)) ?? data.mtime;
  let updatedAt = (await readTimestamp(files.updatedAt)) ?? data.mtime;
  // updatedat is written when a writer closes; the data file's mtime may be newer.
  if (data.mtime > updatedAt) updatedAt = data.mtime;
  return { localRef, offset: data.size, total: await readTotal(files.total), startedAt, updatedAt };
}

/** Records a new ingest's ref, start time and expected size (when known). */
export async function initIngest(dir: string, localRef: string, total: number, now: Date): Promise<void> {
  const files = ingestFiles(dir);
  await writeFile(files.ref, localRef);
  await writeTimestamp(files.startedAt, now);
  await writeTimestamp(files.updatedAt, now);
  if (total > 0) await writeFile(files.total, String(total));
}

/** Writes a timestamp file completely or not at all (synced temporary file, then rename). */
export async function writeTimestamp(path: string, at: Date): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, at.toISOString(), {
    flag: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_SYNC,
  });
  await rename(tmp, path);
}

async function readTimestamp(path: string): Promise<Date | undefined> {
  try {
    const at = new Date((await readFile(path, "utf8")).trim());
    return Number.isNaN(at.getTime()) ? undefined : at;
  } catch (err) {
    if (isNotExist(err)) return undefined;
    throw err;
  }
}

async function readTotal(path: string): Promise<number> {
  try {
    const total = Number((await readFile(path, "utf8")).trim());
    return Number.isSafeInteger(total) && total > 0 ? total : 0;
  } catch (err) {
    if (isNotExist(err)) return 0;
    throw err;
  }
}
