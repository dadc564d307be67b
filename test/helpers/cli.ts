/** Runs the compiled dpt CLI (built by `npm test`'s pretest step) as a real child process. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli/dpt.js', import.meta.url));

export function dpt(args: string[], timeoutMs = 120_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface Run { child: ChildProcess; out: string[]; err: string[]; exit: Promise<number | null> }

/**
 * Starts the compiled CLI as a background process whose output lines are collected as they
 * arrive; the process is pushed onto `started` so the test file can kill leftovers in afterAll.
 * `detached`: it leads a process group of its own, as a shell's foreground job does.
 */
export function spawnDpt(args: string[], started: ChildProcess[], env: Record<string, string> = {}, detached = false): Run {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached });
  started.push(child);
  const out: string[] = [];
  const err: string[] = [];
  child.stdout!.on('data', (d: Buffer) => out.push(...d.toString().split('\n').filter(Boolean)));
  child.stderr!.on('data', (d: Buffer) => err.push(...d.toString().split('\n').filter(Boolean)));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, out, err, exit };
}

/** pids the coordinator logged for its workers ("... pid 1234) joined") */
export function workerPids(lines: string[]): number[] {
  return lines.flatMap((l) => [...l.matchAll(/pid (\d+)\) joined/g)].map((m) => Number(m[1])));
}

/** Whether a process with this pid still exists (signal 0 only checks). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves when cond() holds (polled every 5 ms); after `ms` fails naming `what`, with the run's stderr so far. */
export async function until(what: string, cond: () => boolean, run: Run, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}\n${run.err.join('\n')}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
