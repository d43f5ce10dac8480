/**
 * Reads runs and tasks out of the tracking repository, as any client can:
 * over Git, from the server's clone URL.
 */
import { RemoteRepo } from '../adapters/git/remote-repo.js';
import { layout } from '../core/layout.js';
import { progress, type RunRecord } from '../core/run.js';
import type { TaskRecord } from '../core/task.js';

export interface RunView {
  run: RunRecord;
  tasks: TaskRecord[];
  progress: { done: number; failed: number; total: number };
}

export class TrackingReader {
  readonly repo: RemoteRepo;
  head: string | undefined;

  constructor(url: string, branch = 'main') {
    this.repo = new RemoteRepo(url, branch);
  }

  async refresh(): Promise<string> {
    this.head = await this.repo.fetch();
    return this.head;
  }

  async runIds(): Promise<string[]> {
    if (!this.head) await this.refresh();
    return this.repo.listDir(this.head!, 'projects');
  }

  async run(runId: string): Promise<RunView | undefined> {
    if (!this.head) await this.refresh();
    const text = await this.repo.readFile(this.head!, layout.runFile(runId));
    if (text === undefined) return undefined;
    const run = JSON.parse(text) as RunRecord;
    const tasks: TaskRecord[] = [];
    for (const id of run.tasks) {
      const t = await this.repo.readFile(this.head!, layout.taskFile(runId, id));
      if (t !== undefined) tasks.push(JSON.parse(t) as TaskRecord);
    }
    return { run, tasks, progress: progress(tasks) };
  }
}

export function isRunFinal(run: RunRecord): boolean {
  return run.state === 'rejected' || ((run.state === 'succeeded' || run.state === 'failed') && run.doneCommit !== undefined);
}
