/**
 * Shows a run's progress as a commit status on the todo commit that started
 * it: `pending` while it runs, then `success` or `failure`, with `7/12 tasks
 * done`. Status calls never hold up the pipeline; a failure is logged.
 */
import type { Logger } from '../core/logger.js';
import type { CommitStatuses, RunObserver } from '../core/ports.js';
import { Serial } from '../core/serial.js';

export class StatusReporter implements RunObserver {
  /** In order, one at a time: a late `pending` must never overwrite the final state. */
  private readonly serial = new Serial();

  constructor(
    private readonly forge: CommitStatuses,
    private readonly todoRepo: string,
    private readonly publicUrl: string,
    private readonly log: Logger,
    private readonly context = 'gitjobs',
  ) {}

  private post(runId: string, sha: string, state: 'pending' | 'success' | 'failure' | 'error', description: string): void {
    const targetUrl = `${this.publicUrl.replace(/\/+$/, '')}/api/runs/${runId}`;
    void this.serial
      .run(() => this.forge.setStatus(this.todoRepo, sha, { state, description, targetUrl, context: `${this.context}/${runId.replace(/-[0-9a-f]{7}$/, '')}` }))
      .catch((err: Error) => this.log.warn({ run: runId, err: err.message }, 'could not set the commit status'));
  }

  runQueued(run: { id: string; todoCommit: string; taskCount: number }): void {
    this.post(run.id, run.todoCommit, 'pending', `0/${run.taskCount} tasks done`);
  }

  runProgress(run: { id: string; todoCommit: string }, p: { done: number; failed: number; total: number }): void {
    this.post(run.id, run.todoCommit, 'pending', `${p.done}/${p.total} tasks done${p.failed ? `, ${p.failed} failed` : ''}`);
  }

  runFinished(run: { id: string; todoCommit: string; state: string }, p: { done: number; failed: number; total: number }): void {
    const state = run.state === 'succeeded' ? 'success' : run.state === 'cancelled' ? 'error' : 'failure';
    this.post(run.id, run.todoCommit, state, `${run.state === 'cancelled' ? 'cancelled, ' : ''}${p.done}/${p.total} tasks done${p.failed ? `, ${p.failed} failed` : ''}`);
  }

  /** Resolves once every status so far has been sent. */
  idle(): Promise<unknown> {
    return this.serial.idle();
  }
}
