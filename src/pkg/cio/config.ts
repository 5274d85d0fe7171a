// The stdio of a task or exec process as it travels over the task API: three strings (FIFO paths,
// a `file://` or `binary://` URI in stdout and stderr, or empty for none) and the terminal flag.

export interface StdioConfig {
  stdin: string;
  stdout: string;
  stderr: string;
  /** A pty joins stdout and stderr: there is no separate stderr stream. */
  terminal: boolean;
}

/** No stream at all: the process gets /dev/null for each. */
export function isNullIO(config: StdioConfig): boolean {
  return config.stdin === "" && config.stdout === "" && config.stderr === "";
}
