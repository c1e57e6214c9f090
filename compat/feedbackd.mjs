// Starts the real feedbackd binary for the Node suites under compat/: on a
// free loopback port, on a fresh SQLite file, with a bootstrap API key.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

// startFeedbackd serves bin with key and any further serve flags, and
// resolves once it listens to { base, dir, stop }: its URL, its scratch
// folder (free for the suite's own files too), and a function that ends
// it and deletes that folder.
export async function startFeedbackd(bin, key, ...flags) {
  const dir = mkdtempSync(join(tmpdir(), 'feedbackd-compat-'));
  const proc = spawn(bin, ['serve', '--addr', '127.0.0.1:0', '--db', join(dir, 'feedbackd.db'), '--log-level', 'warn', ...flags], {
    env: { ...process.env, FEEDBACKD_BOOTSTRAP_KEY: key },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const stop = () => {
    proc.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const base = await new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error('feedbackd did not start in 60s')), 60000);
      proc.on('exit', (code) => fail(new Error(`feedbackd exited with ${code}`)));
      createInterface({ input: proc.stdout }).on('line', (line) => {
        const m = line.match(/feedbackd listening on (http:\/\/\S+)/);
        if (m) {
          clearTimeout(timer);
          ok(m[1]);
        }
      });
    });
    return { base, dir, stop };
  } catch (err) {
    stop();
    throw err;
  }
}
