import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import { parseRemoteReference } from "../images/reference.js";
import { Authorizer } from "./auth.js";
import { parseChallenges } from "./challenge.js";
import { parseDockerConfig } from "./docker-config.js";
import { mountCandidate } from "./pusher.js";

test("WWW-Authenticate challenges: several per header, quoted values with commas and escapes", () => {
  assert.deepEqual(
    parseChallenges([
      'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"',
      'Basic realm="say \\"hi\\"", Negotiate',
    ]),
    [
      {
        scheme: "bearer",
        params: {
          realm: "https://auth.example/token",
          service: "registry.example",
          scope: "repository:a/b:pull,push",
        },
      },
      { scheme: "basic", params: { realm: 'say "hi"' } },
      { scheme: "negotiate", params: {} },
    ],
  );
  assert.deepEqual(
    parseChallenges('Bearer realm="r", error="invalid_token"')[0]!.params["error"],
    "invalid_token",
  );
  assert.deepEqual(parseChallenges(undefined), []);
  assert.deepEqual(parseChallenges(""), []);
});

test("the authorizer refuses unusable challenges without naming credentials", async () => {
  const a = new Authorizer({ credentials: () => ({ username: "u", secret: "hunter2" }) });
  const reject = (challenges: ReturnType<typeof parseChallenges>, message: RegExp) =>
    assert.rejects(a.challenged("r.example", challenges, false, undefined), (err: unknown) => {
      assert.equal(codeOf(err), Code.Unauthenticated);
      assert.match((err as Error).message, message);
      assert.doesNotMatch((err as Error).message, /hunter2/);
      return true;
    });
  await reject([], /without a usable authentication challenge \(no WWW-Authenticate header\)/);
  await reject(parseChallenges("Bearer service=x"), /bearer challenge without a realm/);
  await reject(parseChallenges('Bearer realm="file:///etc/passwd"'), /realm must be http or https/);
  await a.challenged("r.example", parseChallenges('Basic realm="x"'), false, undefined);
  assert.equal(
    await a.authorization("r.example", []),
    `Basic ${Buffer.from("u:hunter2").toString("base64")}`,
  );
  assert.equal(await a.authorization("other.example", []), undefined);
  await assert.rejects(
    a.challenged("r.example", parseChallenges('Basic realm="x"'), true, undefined),
    /r\.example: basic authentication failed: the registry refused the credentials$/,
  );
  const anonymous = new Authorizer();
  await assert.rejects(
    anonymous.challenged("r.example", parseChallenges('Basic realm="x"'), false, undefined),
    /requires basic authentication and no credentials were given/,
  );
});

test("docker config.json: auth and username/password entries, Docker Hub's key, secrets never in errors", () => {
  const auth = (s: string) => Buffer.from(s).toString("base64");
  const creds = parseDockerConfig(
    "/c/config.json",
    JSON.stringify({
      auths: {
        "https://index.docker.io/v1/": { auth: auth("hub:hubpw") },
        "https://r.example:5000/v2/": { auth: auth("r:pw:with:colons") },
        "plain.example": { username: "p", password: "ppw" },
        "token.example": { identitytoken: "idtok" },
        "empty.example": {},
      },
      credsStore: "desktop",
    }),
  );
  assert.deepEqual(creds.get("docker.io"), { username: "hub", secret: "hubpw" });
  assert.deepEqual(creds.get("r.example:5000"), { username: "r", secret: "pw:with:colons" });
  assert.deepEqual(creds.get("plain.example"), { username: "p", secret: "ppw" });
  assert.deepEqual(creds.get("token.example"), { username: "", secret: "idtok" });
  assert.equal(creds.has("empty.example"), false);
  assert.throws(
    () =>
      parseDockerConfig(
        "/c/config.json",
        JSON.stringify({ auths: { x: { auth: auth("no-colon-secret") } } }),
      ),
    (err: unknown) => {
      assert.match((err as Error).message, /\/c\/config\.json: auths\."x"\.auth is not base64/);
      assert.doesNotMatch((err as Error).message, /no-colon-secret|bm8tY29sb24tc2VjcmV0/);
      return true;
    },
  );
  assert.throws(() => parseDockerConfig("/c/config.json", "{"), /\/c\/config\.json: invalid JSON/);
});

test("cross-repository mount candidates follow containerd's choice", () => {
  const labels = { "containerd.io/distribution.source.r.example": "team/base,team/app/old,other/x" };
  assert.equal(mountCandidate("r.example:5000", "team/app/new", labels), "team/app/old");
  assert.equal(mountCandidate("r.example", "solo", labels), "other/x");
  assert.equal(mountCandidate("q.example", "team/app", labels), "");
  assert.equal(
    mountCandidate("r.example", "team/base", { "containerd.io/distribution.source.r.example": "team/base" }),
    "",
  );
});

test("remote references are normalised and split for the registry", () => {
  assert.deepEqual(parseRemoteReference("busybox"), {
    name: "docker.io/library/busybox:latest",
    hostname: "docker.io",
    repository: "library/busybox",
    tag: "latest",
    digest: "",
  });
  const d = `sha256:${"a".repeat(64)}`;
  assert.deepEqual(parseRemoteReference(`127.0.0.1:5000/a/b:v1@${d}`), {
    name: `127.0.0.1:5000/a/b:v1@${d}`,
    hostname: "127.0.0.1:5000",
    repository: "a/b",
    tag: "v1",
    digest: d,
  });
  assert.throws(
    () => parseRemoteReference("a/B"),
    (err: unknown) => codeOf(err) === Code.InvalidArgument,
  );
});
