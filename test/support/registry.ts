// A real OCI registry for tests: Debian's docker-registry (distribution v2) on 127.0.0.1 with a
// free port and temporary storage, over plain HTTP, TLS with a test CA made with openssl, or TLS
// with basic auth from an htpasswd file (the registry accepts basic auth only over TLS).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, request } from "undici";
import type { Pusher } from "../../src/core/remotes/pusher.js";
import type { BuiltImage } from "./images.js";

export const REGISTRY_BIN = "/usr/bin/docker-registry";

export type RegistryMode = "http" | "tls" | "basic-auth";

export interface TestRegistry {
  mode: RegistryMode;
  /** "127.0.0.1:PORT", the host part of references to this registry. */
  host: string;
  port: number;
  dir: string;
  /** PEM file of the CA that signed the server certificate (TLS modes). */
  caFile: string;
  username: string;
  password: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A CA and a server certificate for 127.0.0.1 and localhost signed by it, in dir. */
export function makeTestCa(dir: string): { ca: string; cert: string; key: string; caKey: string } {
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) =>
    execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=Berth Test CA",
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.crt"),
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
  openssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    f("server.key"),
    "-out",
    f("server.csr"),
  );
  writeFileSync(
    f("server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
  );
  openssl(
    "x509",
    "-req",
    "-in",
    f("server.csr"),
    "-CA",
    f("ca.crt"),
    "-CAkey",
    f("ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-out",
    f("server.crt"),
    "-extfile",
    f("server.ext"),
  );
  return { ca: f("ca.crt"), cert: f("server.crt"), key: f("server.key"), caKey: f("ca.key") };
}

export async function startRegistry(mode: RegistryMode = "http"): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), "berth-registry-"));
  const port = await freePort();
  const username = "berth";
  const password = "s3cret-pass";
  let tls = "";
  let auth = "";
  let caFile = "";
  if (mode !== "http") {
    const pki = makeTestCa(dir);
    caFile = pki.ca;
    tls = `  tls:\n    certificate: ${pki.cert}\n    key: ${pki.key}\n`;
  }
  if (mode === "basic-auth") {
    const htpasswd = execFileSync("htpasswd", ["-Bbn", username, password], { encoding: "utf8" });
    writeFileSync(join(dir, "htpasswd"), htpasswd);
    auth = `auth:\n  htpasswd:\n    realm: berth-test\n    path: ${join(dir, "htpasswd")}\n`;
  }
  const config = join(dir, "config.yml");
  writeFileSync(
    config,
    `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, "storage")}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
${tls}${auth}`,
  );
  const proc: ChildProcess = spawn(REGISTRY_BIN, ["serve", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      await Promise.race([exited, sleep(5000)]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Ready when /v2/ answers (401 with auth on); TLS readiness is checked without verification.
  const agent = new Agent({ connect: { rejectUnauthorized: false } });
  const scheme = mode === "http" ? "http" : "https";
  try {
    for (let i = 0; ; i++) {
      if (proc.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
      try {
        const res = await request(`${scheme}://127.0.0.1:${port}/v2/`, { dispatcher: agent });
        await res.body.dump();
        if (res.statusCode === 200 || res.statusCode === 401) break;
      } catch {
        // not listening yet
      }
      if (i > 200) throw new Error(`docker-registry did not become ready: ${stderr}`);
      await sleep(50);
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    await agent.close();
  }
  return { mode, host: `127.0.0.1:${port}`, port, dir, caFile, username, password, stop };
}

/** Pushes a built image (layers, config, manifest under tag) with the pusher under test. */
export async function pushImage(pusher: Pusher, image: BuiltImage, tag = "latest"): Promise<void> {
  for (const l of image.layers)
    await pusher.pushBlob(
      { mediaType: l.mediaType, digest: l.digest, size: l.blob.length, annotations: {} },
      l.blob,
    );
  await pusher.pushBlob(
    {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: image.configDigest,
      size: image.config.length,
      annotations: {},
    },
    image.config,
  );
  await pusher.pushManifest(
    {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: image.manifestDigest,
      size: image.manifest.length,
      annotations: {},
    },
    image.manifest,
    tag,
  );
}
