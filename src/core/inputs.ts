/**
 * A task with `needs` is given what they left (files.ts): each needed
 * task's stdout and files, read from tracking and done just before its TODO
 * message is sent, and carried in it. Past INPUTS_CAP, or when something
 * cannot be read, the message carries the reason instead and the attempt
 * fails with it, without running.
 */
import type { TodoMessage } from './channels.js';
import { formatBytes, INPUTS_CAP, inputTree, toWire, type FileData } from './files.js';
import type { GitStore, Queue } from './ports.js';
import { MessageTooLargeError } from './errors.js';
import { locateRun, readStdout, repoTree } from './run-reader.js';
import type { TaskRecord } from './task.js';

export interface InputRepos {
  tracking: string;
  done: string;
}

/** The message with its task's inputs (or the reason it cannot have them); unchanged for a task without needs. */
export async function withInputs(store: GitStore, repos: InputRepos, message: TodoMessage, cap = INPUTS_CAP): Promise<TodoMessage> {
  if (!message.needs?.length || message.inputs || message.inputsError) return message;
  try {
    return { ...message, inputs: toWire(await readInputs(store, repos, message.run, message.needs, cap)) };
  } catch (err) {
    return { ...message, inputsError: `inputs of ${message.task}: ${(err as Error).message}` };
  }
}

async function readInputs(store: GitStore, repos: InputRepos, runId: string, needs: readonly string[], cap: number): Promise<FileData[]> {
  const source = repoTree(store, repos.tracking);
  const head = await store.head(repos.tracking);
  const located = head === undefined ? undefined : await locateRun(source, head, runId);
  if (!located) throw new Error(`tracking has no run ${runId}`);
  const { paths } = located;
  const needed: { task: string; stdout: string; files: FileData[] }[] = [];
  let total = 0;
  const count = (n: number) => {
    total += n;
    if (total > cap) throw new Error(`what it needs comes to more than ${formatBytes(cap)}, the most a task is given under /in`);
  };
  for (const id of needs) {
    // Only the needed tasks' own files are read, whatever the size of the run: their state holds where their stdout and files are.
    const text = await source.readFile(head!, paths.taskFile(id));
    if (text === undefined) throw new Error(`tracking has no task ${id} in ${runId}`);
    const task = { ...(JSON.parse(text) as TaskRecord), id };
    if (task.state !== 'succeeded') throw new Error(`${id} is ${task.state}, not succeeded`);
    const stdout = await readStdout(source, head!, paths, task);
    count(Buffer.byteLength(stdout));
    const files: FileData[] = [];
    for (const entry of task.files?.entries ?? []) {
      count(entry.bytes);
      const data = await store.readBytes(repos.done, task.files!.commit, `${task.files!.dir}/${entry.path}`);
      if (!data) throw new Error(`${id}'s file ${entry.path} is not in done at ${task.files!.commit.slice(0, 7)}`);
      files.push({ path: entry.path, data });
    }
    needed.push({ task: id, stdout, files });
  }
  return inputTree(needed);
}

/**
 * Sends a task's TODO message with its inputs; when they make it larger than
 * the broker takes, it is sent without them, carrying the reason, and the
 * attempt fails saying so.
 */
export async function sendWithInputs(queue: Queue, store: GitStore, repos: InputRepos, message: TodoMessage): Promise<void> {
  if (!message.needs?.length) return queue.publish('todo', message);
  const full = await withInputs(store, repos, message);
  try {
    await queue.publish('todo', full);
  } catch (err) {
    if (!(err instanceof MessageTooLargeError)) throw err;
    const { inputs: _, ...rest } = full;
    await queue.publish('todo', { ...rest, inputsError: `inputs of ${message.task}: ${err.message}` });
  }
}
