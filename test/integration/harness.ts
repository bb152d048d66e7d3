/**
 * Integration harness. Every test runs its shell script inside a private
 * network and mount namespace made for it (`unshare --net --mount`), with
 * only loopback up: nothing it does can reach a real interface. The
 * scripts call rxslirp through $RXSLIRP. These tests need root (CI runs as
 * root); they fail, rather than skip, without it.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import assert from 'node:assert/strict';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const RXSLIRP = resolve(REPO, 'bin/rxslirp.js');

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function assertRoot(): void {
  assert.equal(
    process.getuid?.(),
    0,
    'integration tests need root: they create network namespaces (run them as root, as CI does)',
  );
}

/** Runs `script` with bash in a fresh private network+mount namespace. */
export function inSandbox(
  script: string,
  options: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<Result> {
  assertRoot();
  const prelude = 'set -euo pipefail\nip link set lo up\n';
  return new Promise((resolvePromise, reject) => {
    const child = spawn('unshare', ['--net', '--mount', '--', 'bash', '-c', prelude + script], {
      env: { ...process.env, RXSLIRP, REPO, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    // The script's leftovers (background jobs) share its process group.
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(killGroup, options.timeoutMs ?? 60_000);
    let exitCode: number | null = null;
    child.on('error', reject);
    child.on('exit', (code) => {
      exitCode = code;
      killGroup();
    });
    child.on('close', () => {
      clearTimeout(timer);
      resolvePromise({ code: exitCode, stdout, stderr });
    });
  });
}

/** Asserts a zero exit status, showing the script's output otherwise. */
export function assertOk(r: Result): void {
  assert.equal(r.code, 0, `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
}

/**
 * Shell functions for scripts: `newns VAR` starts a process in a fresh
 * user+net namespace, waits until it has left ours, and stores its PID;
 * `waitready FIFO` reads the byte rxslirp writes to its --ready-fd.
 */
export const SHELL_HELPERS = `
newns() {
  unshare --user --map-root-user --net sleep 120 &
  local p=$!
  for _ in $(seq 100); do
    [ "$(readlink /proc/$p/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
    sleep 0.05
  done
  eval "$1=$p"
}
innsx() { local pid=$1; shift; nsenter --target "$pid" --user --net --preserve-credentials -- "$@"; }
waitready() { local b; read -r -n1 -t 20 b < "$1"; [ "$b" = 1 ]; }
`;
