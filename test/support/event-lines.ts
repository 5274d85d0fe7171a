// An event-printing command (`ctr events`, `berthctl events`) running in the background against
// a test daemon, its stdout collected line by line.
import { type ChildProcess, spawn } from "node:child_process";
import { create } from "@bufbuild/protobuf";
import { NamespaceDeleteSchema } from "../../src/api/events/namespace_pb.js";
import { Events } from "../../src/api/services/events/v1/events_pb.js";
import { packEvent } from "../../src/api-registry/events.js";
import type { Daemon } from "./daemon.js";

/** Topic of the markers sync() publishes; a filtered command needs `topic=="/test/sync"` too. */
export const SYNC_TOPIC = "/test/sync";

export class EventLines {
  private out = "";
  private err = "";
  private readonly proc: ChildProcess;

  constructor(
    private readonly d: Daemon,
    command: string,
    args: string[],
  ) {
    this.proc = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.proc.stdout!.setEncoding("utf8").on("data", (s: string) => {
      this.out += s;
    });
    this.proc.stderr!.setEncoding("utf8").on("data", (s: string) => {
      this.err += s;
    });
  }

  /** Printed lines other than sync markers. */
  get lines(): string[] {
    return this.out.split("\n").filter((l) => l !== "" && !l.includes(SYNC_TOPIC));
  }

  /**
   * Publishes markers (NamespaceDelete events with a unique name) until the command prints one:
   * then it is subscribed, and everything published before this call has been printed.
   */
  async sync(): Promise<void> {
    const name = `m${Math.random().toString(36).slice(2)}`;
    const event = packEvent(create(NamespaceDeleteSchema, { name }));
    const events = this.d.client("default").service(Events);
    const deadline = Date.now() + 15_000;
    while (!this.out.includes(`"name":"${name}"`)) {
      if (this.proc.exitCode !== null) throw new Error(`the command exited: ${this.err}`);
      if (Date.now() > deadline) throw new Error(`no marker printed:\n${this.out}\n${this.err}`);
      await events.publish({ topic: SYNC_TOPIC, event });
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  stop(): void {
    this.proc.kill();
  }
}
