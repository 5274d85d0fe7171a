// syncfs(2): flush the filesystem holding a path. It can take long on a busy disk, so it runs
// through koffi's asynchronous call, off the event loop.
import { open } from "node:fs/promises";
import { libcFunction, SysError } from "./libc.js";

/** koffi runs a declared function on its worker threads through `.async`. */
type AsyncCall = { async(fd: number, done: (err: unknown, result: number) => void): void };

const syncfsFn = libcFunction("int syncfs(int fd)");

export async function syncfs(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    const result = await new Promise<number>((resolve, reject) =>
      (syncfsFn() as unknown as AsyncCall).async(handle.fd, (err, res) => (err ? reject(err) : resolve(res))),
    );
    // errno belongs to the thread koffi ran the call on, out of reach here: EIO is what syncfs
    // reports for a failed writeback, the only failure an open descriptor leaves it.
    if (result === -1) throw new SysError("syncfs", 5, path);
  } finally {
    await handle.close();
  }
}
