// A repository on a registry as the resolver, fetcher and pusher address it: the reference, the
// endpoints serving its host (mirrors first), request URLs under each endpoint's API root (with
// `?ns=<registry>` when a mirror serves it, as containerd sends), and token scopes.
import type { RemoteReference } from "../images/reference.js";
import type { RegistryClient } from "./client.js";
import { type Capability, hasCapability, isMirror, type RegistryHost } from "./hosts.js";

export class Repository {
  constructor(
    readonly ref: RemoteReference,
    readonly hosts: readonly RegistryHost[],
    readonly client: RegistryClient,
  ) {}

  /** The endpoints with every one of these capabilities, in order. */
  withCapability(...caps: Capability[]): RegistryHost[] {
    return this.hosts.filter((h) => hasCapability(h, ...caps));
  }

  /** `<scheme>://<host><path>/<repository>/<parts...>`, with `ns` for a mirror. */
  url(host: RegistryHost, ...parts: string[]): URL {
    const root = host.path.endsWith("/") ? host.path.slice(0, -1) : host.path;
    const url = new URL(`${host.scheme}://${host.host}${root}/${this.ref.repository}/${parts.join("/")}`);
    if (isMirror(host, this.ref.hostname)) url.searchParams.set("ns", this.ref.hostname);
    return url;
  }

  /** The token scope for this repository. */
  scope(push = false): string {
    return `repository:${this.ref.repository}:pull${push ? ",push" : ""}`;
  }
}
