// eventfd(2) and epoll(7): how the kernel signals a cgroup v1 event (cgroup.event_control) to a
// process. Node cannot poll an arbitrary descriptor on its event loop, so the epoll wait runs on
// koffi's worker thread (one for all the descriptors in the set) and answers a promise.
import { check, libcFunction } from "./libc.js";

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const EPOLL_CLOEXEC = 0o2000000;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLLIN = 0x1;

// struct epoll_event { uint32_t events; uint64_t data; }: packed on x86-64, naturally aligned elsewhere.
const EVENT_SIZE = process.arch === "x64" ? 12 : 16;
const DATA_OFFSET = process.arch === "x64" ? 4 : 8;

const eventfdFn = libcFunction("int eventfd(unsigned int initval, int flags)");
const epollCreateFn = libcFunction("int epoll_create1(int flags)");
const epollCtlFn = libcFunction("int epoll_ctl(int epfd, int op, int fd, void *event)");
const epollWaitFn = libcFunction("int epoll_wait(int epfd, _Out_ void *events, int maxevents, int timeout)");

/** A koffi function's call on a worker thread, its result to a callback. */
interface AsyncCFunction {
  async(...args: unknown[]): void;
}

/** A new eventfd, non-blocking and close-on-exec. */
export function eventfd(): number {
  return check(eventfdFn()(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd");
}

/** A new epoll instance, close-on-exec. */
export function epollCreate(): number {
  return check(epollCreateFn()(EPOLL_CLOEXEC), "epoll_create1");
}

/** Adds fd to the set, watched for input; its readiness is reported as fd. */
export function epollAdd(epfd: number, fd: number): void {
  const event = Buffer.alloc(EVENT_SIZE);
  event.writeUInt32LE(EPOLLIN, 0);
  event.writeBigUInt64LE(BigInt(fd), DATA_OFFSET);
  check(epollCtlFn()(epfd, EPOLL_CTL_ADD, fd, event), "epoll_ctl(ADD)", `fd ${fd}`);
}

export function epollDelete(epfd: number, fd: number): void {
  check(epollCtlFn()(epfd, EPOLL_CTL_DEL, fd, Buffer.alloc(EVENT_SIZE)), "epoll_ctl(DEL)", `fd ${fd}`);
}

/**
 * Waits up to timeoutMs on a worker thread for descriptors of the set to become readable; the
 * ready ones (none on timeout or a signal). The event loop stays free meanwhile.
 */
export function epollWait(epfd: number, maxEvents: number, timeoutMs: number): Promise<number[]> {
  const events = Buffer.alloc(EVENT_SIZE * maxEvents);
  return new Promise((resolve, reject) => {
    const wait = epollWaitFn() as unknown as AsyncCFunction;
    wait.async(epfd, events, maxEvents, timeoutMs, (err: unknown, n: number) => {
      if (err) {
        reject(err);
        return;
      }
      if (n === -1) {
        // errno belongs to the worker thread; EINTR is the one failure a valid set can see.
        resolve([]);
        return;
      }
      const ready: number[] = [];
      for (let i = 0; i < n; i++) ready.push(Number(events.readBigUInt64LE(i * EVENT_SIZE + DATA_OFFSET)));
      resolve(ready);
    });
  });
}
