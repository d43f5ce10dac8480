import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AmqpQueue } from '../../adapters/amqp/queue.js';
import { up } from '../../app/gitjobs.js';
import { createLogger } from '../../app/logger.js';
import { NQUEENS_KNOWN, NQUEENS_MAX_N, nqueensTasks } from '../../core/nqueens.js';
import { runPaths } from '../../core/layout.js';
import { prefixedQueues } from '../../core/settings.js';
import { submit, waitForRun } from '../../client/submit.js';
import { progressLine } from '../progress.js';
import { amqpUrl, executorKind, positiveInt, settingsFrom, str, UsageError, type Flags } from '../options.js';

/** Everything in a temporary home: push N-Queens through a real push and show what Git recorded. */
export async function demoCommand(flags: Flags): Promise<number> {
  const n = positiveInt(flags, 'n', 10);
  if (n < 1 || n > NQUEENS_MAX_N) throw new UsageError(`--n must be from 1 to ${NQUEENS_MAX_N}`);
  const settings = { ...settingsFrom(flags), queues: prefixedQueues(str(flags, 'queue-prefix') ?? `gitjobs-demo-${process.pid}`) };
  const logger = createLogger(str(flags, 'log-level') ?? 'warn');
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-demo-'));
  const say = (s: string) => process.stdout.write(s + '\n');
  const split = nqueensTasks(n).length;
  say(`gitjobs demo: N-Queens for n = ${n}, half the board searched (the other half is its mirror image), split into ${split} task${split === 1 ? '' : 's'}, one container each`);
  const running = await up({ home, host: '127.0.0.1', port: 0, workers: Math.max(1, positiveInt(flags, 'workers', 2)), executor: executorKind(flags), amqpUrl: amqpUrl(flags), settings, logger });
  try {
    say(`built-in Git host at ${running.url} (home ${home})`);
    const file = path.join(home, `nqueens-${n}.json`);
    fs.writeFileSync(file, JSON.stringify({ project: `nqueens-${n}`, nqueens: { n }, timeout: '120s' }, null, 2) + '\n');
    const sent = await submit({ file, url: running.url, repos: settings.repos, branch: settings.branch });
    say(`pushed ${sent.file} (commit ${sent.commit.slice(0, 7)}) to ${settings.repos.todo}; run ${sent.run}`);
    let last = '';
    const { view, resultText } = await waitForRun({
      url: running.url,
      run: sent.run,
      timeoutMs: 10 * 60_000,
      onProgress: (v, ms) => {
        const line = progressLine(v, ms);
        if (line.slice(9) !== last) say(line);
        last = line.slice(9);
      },
    });
    say('');
    say(`result (${view.run.state}), from ${settings.repos.done}/${runPaths(view.run).resultText}: ${(resultText ?? '').trim()}`);
    const expected = NQUEENS_KNOWN[n];
    say(`expected: ${expected}`);
    say('');
    say(`git log --oneline of ${settings.repos.tracking} (one commit per transition, newest first):`);
    for (const c of await running.store.log(settings.repos.tracking)) say(`  ${c.oid.slice(0, 7)} ${c.message.split('\n')[0]}`);
    say('');
    say(`With \`gitjobs up\` running, clone them the same way: git clone http://127.0.0.1:8080/git/${settings.repos.tracking}.git`);
    return view.run.state === 'succeeded' && Number((resultText ?? '').trim()) === expected ? 0 : 1;
  } finally {
    // Stopped first, so that nothing publishes to queues being deleted; then the demo's queues go.
    await running.stop();
    const queues = await AmqpQueue.connect({ url: amqpUrl(flags), queues: settings.queues }).catch(() => undefined);
    await queues?.deleteQueues().catch(() => undefined);
    await queues?.close();
    if (!flags.keep) fs.rmSync(home, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    else say(`kept ${home}`);
  }
}
