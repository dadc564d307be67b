/**
 * TLS as users run it: real `dpt launch`, `dpt coordinator` and `dpt worker` processes on
 * 127.0.0.1 with a self-signed certificate made here by openssl. Training over wss:// reaches the
 * same parameters as over ws://; a worker that does not trust the certificate says so in one line
 * naming --ca and is not retried; the token is still required.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnDpt, type Run } from '../helpers/cli.js';

const HAS_OPENSSL = spawnSync('openssl', ['version']).status === 0;

const started: ChildProcess[] = [];
const servers: Server[] = [];
const dir = mkdtempSync(join(tmpdir(), 'dpt-tls-'));
afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

const dpt = (args: string[], env: Record<string, string> = {}): Run => spawnDpt(args, started, { DPT_TOKEN: 'tls-test-token', ...env });
const f = (name: string): string => join(dir, name);
const TINY = ['--epochs', '1', '--train-limit', '200', '--max-steps', '5', '--batch', '20', '--kernels', 'js', '--eval-set', 'validation'];
const UNTRUSTED = /^dpt: error: the coordinator's certificate at wss:\/\/127\.0\.0\.1:\d+ is not trusted \(self-signed certificate\): pass the certificate or its CA with --ca FILE$/;

/** A self-signed certificate for the given IP address, as the docs tell users to make one. */
function selfSigned(prefix: string, ip: string): void {
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${prefix}key.pem`), '-out', f(`${prefix}cert.pem`),
    '-days', '1', '-subj', `/CN=${ip}`, '-addext', `subjectAltName=IP:${ip}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function listening(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

describe.skipIf(!HAS_OPENSSL)(`TLS between coordinator and workers${HAS_OPENSSL ? '' : ' (skipped: no openssl on PATH to make a test certificate)'}`, () => {
  beforeAll(() => {
    selfSigned('', '127.0.0.1');
    selfSigned('other-', '127.0.0.2');
  });

  it('dpt launch --workers 2 over wss:// reaches exactly the parameters it reaches over ws://', async () => {
    const tls = dpt(['launch', '--workers', '2', ...TINY, '--tls-cert', f('cert.pem'), '--tls-key', f('key.pem'), '--save', f('tls.safetensors')]);
    const plain = dpt(['launch', '--workers', '2', ...TINY, '--save', f('plain.safetensors')]);
    expect(await tls.exit, tls.err.join('\n')).toBe(0);
    expect(await plain.exit, plain.err.join('\n')).toBe(0);
    // rank 0 on the coordinator, rank 1 a worker process over wss://
    expect(tls.err.filter((l) => /^\[worker \d\] joined wss:\/\/127\.0\.0\.1:\d+/.test(l))).toHaveLength(1);
    expect(readFileSync(f('tls.safetensors')).equals(readFileSync(f('plain.safetensors')))).toBe(true);
  });

  it('a worker without --ca is refused in one line naming --ca and exits 2 at once; the coordinator goes on, still requires the token, and trains with a worker given --ca', async () => {
    const coord = dpt(['coordinator', '--listen', '127.0.0.1:0', '--workers', '1', ...TINY, '--tls-cert', f('cert.pem'), '--tls-key', f('key.pem')]);
    await until(() => coord.err.some((l) => l.includes('listening on')), 'the coordinator to listen');
    const url = /listening on (wss:\/\/127\.0\.0\.1:\d+)/.exec(coord.err.join('\n'))![1]!;

    const t0 = Date.now();
    const untrusting = dpt(['worker', '--connect', url]);
    expect(await untrusting.exit).toBe(2);
    expect(Date.now() - t0).toBeLessThan(5000); // not retried until --connect-timeout (60 s)
    expect(untrusting.err).toHaveLength(1);
    expect(untrusting.err[0]).toMatch(UNTRUSTED);

    const intruder = dpt(['worker', '--connect', url, '--ca', f('cert.pem')], { DPT_TOKEN: 'wrong-token' });
    expect(await intruder.exit).toBe(2);
    expect(intruder.err.join('\n')).toMatch(/DPT_ERR_AUTH/);

    const trusting = dpt(['worker', '--connect', url, '--ca', f('cert.pem')]);
    expect(await trusting.exit, trusting.err.join('\n')).toBe(0);
    expect(await coord.exit, coord.err.join('\n')).toBe(0);
    expect(trusting.err.join('\n')).toMatch(/joined wss:\/\/127\.0\.0\.1:\d+/);
    expect(coord.err.join('\n')).toMatch(/TLS handshake.* failed .*needs --ca FILE/);
    expect(coord.out.join('\n')).toMatch(/Epoch 1:/);
  });

  it('a worker names the cause and the fix when the certificate is for another address, or the coordinator does not speak TLS', async () => {
    const otherName = await listening(createHttpsServer({ cert: readFileSync(f('other-cert.pem')), key: readFileSync(f('other-key.pem')) }));
    const wrongHost = dpt(['worker', '--connect', `wss://127.0.0.1:${otherName}`, '--ca', f('other-cert.pem')]);
    const noTls = await listening(createHttpServer());
    const plain = dpt(['worker', '--connect', `wss://127.0.0.1:${noTls}`]);
    expect(await wrongHost.exit).toBe(2);
    expect(wrongHost.err).toEqual([expect.stringMatching(/^dpt: error: the coordinator's certificate at wss:\/\/127\.0\.0\.1:\d+ is not issued for 127\.0\.0\.1 \(.*\): connect with a name or address the certificate lists/)]);
    expect(await plain.exit).toBe(2);
    expect(plain.err).toEqual([expect.stringMatching(/^dpt: error: the coordinator at wss:\/\/127\.0\.0\.1:\d+ does not speak TLS \(.*\): connect with ws:\/\/, or start the coordinator with --tls-cert and --tls-key$/)]);
  });

  it('flag errors name the flag, and the file where there is one', async () => {
    const runs: [string[], RegExp][] = [
      [['launch', ...TINY, '--tls-cert', f('cert.pem')], /--tls-cert needs --tls-key FILE/],
      [['coordinator', ...TINY, '--tls-key', f('key.pem')], /--tls-key needs --tls-cert FILE/],
      [['train', ...TINY, '--tls-cert', f('cert.pem'), '--tls-key', f('key.pem')], /--tls-cert and --tls-key secure WebSocket workers, not --transport inproc/],
      [['launch', ...TINY, '--tls-cert', f('missing.pem'), '--tls-key', f('key.pem')], new RegExp(`--tls-cert ${f('missing.pem')}: cannot read it \\(ENOENT\\)`)],
      [['launch', ...TINY, '--tls-cert', f('key.pem'), '--tls-key', f('key.pem')], new RegExp(`--tls-cert ${f('key.pem')} is not a PEM certificate`)],
      [['launch', ...TINY, '--tls-cert', f('cert.pem'), '--tls-key', f('other-key.pem')], new RegExp(`--tls-key ${f('other-key.pem')} is not the private key of --tls-cert ${f('cert.pem')}`)],
      [['worker', '--connect', 'ws://127.0.0.1:9', '--ca', f('cert.pem')], /--ca \S+ applies to TLS, but --connect ws:\/\/127\.0\.0\.1:9 is plain ws:\/\//],
      [['worker', '--connect', 'wss://127.0.0.1:9', '--ca', f('key.pem')], new RegExp(`--ca ${f('key.pem')} is not a PEM certificate`)],
    ];
    const done = runs.map(([args]) => dpt(args));
    for (const [i, run] of done.entries()) {
      expect(await run.exit, runs[i]![0].join(' ')).toBe(2);
      expect(run.err.join('\n')).toMatch(runs[i]![1]);
      expect(run.err.join('\n')).toMatch(/^dpt: error: /);
    }
  });
});
