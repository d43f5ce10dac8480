/**
 * Reads runs and tasks out of the tracking repository, as any client can:
 * over Git, from the server's clone URL.
 */
import { RemoteRepo } from '../adapters/git/remote-repo.js';
import { listRunIds, readRunView, type RunView } from '../core/run-reader.js';

export type { RunView };

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
    return listRunIds(this.repo, this.head!);
  }

  async run(runId: string): Promise<RunView | undefined> {
    if (!this.head) await this.refresh();
    return readRunView(this.repo, this.head!, runId);
  }
}

