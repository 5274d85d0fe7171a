// recvmsg(2) with SCM_RIGHTS: receiving a file descriptor another process sends over a unix
// socket (runc's console socket hands over the pty master this way). Node's sockets cannot
// receive descriptors, so the message is laid out in C memory and read back by hand.
import { closeSync } from "node:fs";
import { endianness } from "node:os";
import { ffi, lastErrno, libcFunction, SysError } from "./libc.js";

const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_CTRUNC = 0x8;
const MSG_DONTWAIT = 0x40;
const MSG_CMSG_CLOEXEC = 0x40000000;
const EAGAIN = 11;
const EINTR = 4;

/** Bytes of payload accepted alongside the descriptor (runc sends the pty's path, up to PATH_MAX). */
const MAX_PAYLOAD = 4096;
/** Room for a few descriptors, so a sender passing more than one cannot leak them into us unseen. */
const MAX_FDS = 8;

const recvmsgFn = libcFunction("long recvmsg(int fd, void *msg, int flags)");

interface Layout {
  msghdr: number;
  name: number;
  namelen: number;
  iov: number;
  iovlen: number;
  control: number;
  controllen: number;
  flags: number;
  iovecSize: number;
  cmsgHeader: number;
}

let layout: Layout | undefined;

// struct msghdr, struct iovec and struct cmsghdr as the C compiler lays them out (koffi applies the
// platform's alignment rules); pointers and size_t are 8 bytes on every platform Berth runs on.
function msgLayout(): Layout {
  if (!layout) {
    const k = ffi();
    if (k.sizeof("void *") !== 8 || endianness() !== "LE") {
      throw new Error("fd passing supports 64-bit little-endian platforms only");
    }
    const msghdr = k.struct("berth_msghdr", {
      msg_name: "void *",
      msg_namelen: "uint32_t",
      msg_iov: "void *",
      msg_iovlen: "size_t",
      msg_control: "void *",
      msg_controllen: "size_t",
      msg_flags: "int",
    });
    layout = {
      msghdr: k.sizeof(msghdr),
      name: k.offsetof(msghdr, "msg_name"),
      namelen: k.offsetof(msghdr, "msg_namelen"),
      iov: k.offsetof(msghdr, "msg_iov"),
      iovlen: k.offsetof(msghdr, "msg_iovlen"),
      control: k.offsetof(msghdr, "msg_control"),
      controllen: k.offsetof(msghdr, "msg_controllen"),
      flags: k.offsetof(msghdr, "msg_flags"),
      iovecSize: 16,
      // cmsg_len (size_t), cmsg_level (int), cmsg_type (int): CMSG_LEN(0) on 64-bit.
      cmsgHeader: 16,
    };
  }
  return layout;
}

/** A descriptor received over a unix socket, with the bytes sent alongside it. */
export interface ReceivedFd {
  fd: number;
  payload: Buffer;
}

/**
 * One non-blocking recvmsg on the unix socket `fd`, expecting one descriptor (received close-on-exec).
 * Returns "again" when nothing has arrived yet and "eof" when the peer closed without sending.
 * A message without a descriptor, with several, or truncated is an error (any received are closed).
 */
export function recvFd(fd: number): ReceivedFd | "again" | "eof" {
  const k = ffi();
  const l = msgLayout();
  const controlSize = l.cmsgHeader + 4 * MAX_FDS;
  const total = l.msghdr + l.iovecSize + MAX_PAYLOAD + controlSize;
  const mem = k.alloc("uint8_t", total);
  try {
    const base = BigInt(k.address(mem));
    const view = new DataView(k.view(mem, total));
    const iovAt = l.msghdr;
    const dataAt = iovAt + l.iovecSize;
    const controlAt = dataAt + MAX_PAYLOAD;
    new Uint8Array(view.buffer, 0, total).fill(0);
    view.setBigUint64(iovAt, base + BigInt(dataAt), true);
    view.setBigUint64(iovAt + 8, BigInt(MAX_PAYLOAD), true);
    view.setBigUint64(l.iov, base + BigInt(iovAt), true);
    view.setBigUint64(l.iovlen, 1n, true);
    view.setBigUint64(l.control, base + BigInt(controlAt), true);
    view.setBigUint64(l.controllen, BigInt(controlSize), true);

    let n: number;
    for (;;) {
      n = Number(recvmsgFn()(fd, mem, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
      if (n !== -1) break;
      const errno = lastErrno();
      if (errno === EINTR) continue;
      if (errno === EAGAIN) return "again";
      throw new SysError("recvmsg", errno, `fd ${fd}`);
    }

    const fds: number[] = [];
    const controlLen = Number(view.getBigUint64(l.controllen, true));
    for (let at = controlAt; at + l.cmsgHeader <= controlAt + controlLen; ) {
      const len = Number(view.getBigUint64(at, true));
      if (len < l.cmsgHeader) break;
      if (view.getInt32(at + 8, true) === SOL_SOCKET && view.getInt32(at + 12, true) === SCM_RIGHTS) {
        for (let p = at + l.cmsgHeader; p + 4 <= at + len; p += 4) fds.push(view.getInt32(p, true));
      }
      at += (len + 7) & ~7;
    }
    const truncated = (view.getInt32(l.flags, true) & MSG_CTRUNC) !== 0;
    if (fds.length === 1 && !truncated) {
      return { fd: fds[0]!, payload: Buffer.from(new Uint8Array(view.buffer, dataAt, n)) };
    }
    for (const received of fds) closeSync(received);
    if (n === 0 && fds.length === 0) return "eof";
    const what = truncated ? "a truncated control message" : `${fds.length} descriptors`;
    throw new Error(`recvmsg fd ${fd}: expected one descriptor over SCM_RIGHTS, got ${what}`);
  } finally {
    k.free(mem);
  }
}
