/**
 * A run's tasks as a graph: `needs` point from a task to those that must
 * succeed before it is queued. Waiting tasks are decided here, as pure
 * functions over the tasks' states; the collector commits the decisions.
 */
import type { ProjectProblem } from './errors.js';
import { isFinal, type TaskRecord } from './task.js';

export type WaitingDecision = { kind: 'release'; task: TaskRecord } | { kind: 'skip'; task: TaskRecord; because: TaskRecord };

/** For each task, the tasks that need it. */
export function dependentsOf(tasks: Iterable<Pick<TaskRecord, 'id' | 'needs'>>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const t of tasks) {
    for (const n of t.needs ?? []) {
      const list = out.get(n);
      if (list) list.push(t.id);
      else out.set(n, [t.id]);
    }
  }
  return out;
}

/**
 * What becomes of a waiting task now: released once everything it needs
 * has succeeded, skipped as soon as one of them ends any other way (failed
 * for good, skipped, cancelled), else nothing yet.
 */
export function decideWaiting(task: TaskRecord, tasks: ReadonlyMap<string, TaskRecord>): WaitingDecision | undefined {
  if (task.state !== 'waiting') return undefined;
  let all = true;
  for (const id of task.needs ?? []) {
    const need = tasks.get(id);
    // A need the run does not have (a re-run of some tasks only) is no reason to wait.
    if (!need) continue;
    if (need.state === 'succeeded') continue;
    if (isFinal(need)) return { kind: 'skip', task, because: need };
    all = false;
  }
  return all ? { kind: 'release', task } : undefined;
}

/**
 * A project's `needs` as task ids: each name is a task's id, or a matrix
 * task's id as written (all its instances); `named` maps each name to its
 * ids. Sets `needs` on the tasks of `out` (by the listed task they came
 * from) and returns what is wrong: unknown names at their path, or a cycle.
 */
export function resolveNeeds(
  listed: readonly { needs?: string[] | undefined }[],
  named: ReadonlyMap<string, string[]>,
  out: { spec: { id: string; needs?: string[] }; listed: number }[],
): ProjectProblem[] {
  const problems: ProjectProblem[] = [];
  const needsOf = new Map<number, string[]>();
  listed.forEach((t, i) => {
    if (!t.needs?.length) return;
    const ids: string[] = [];
    t.needs.forEach((name, j) => {
      const found = named.get(name);
      if (!found) problems.push({ path: `$.tasks[${i}].needs[${j}]`, message: `no task or matrix named ${JSON.stringify(name)} in this project` });
      else for (const id of found) if (!ids.includes(id)) ids.push(id);
    });
    needsOf.set(i, ids);
  });
  for (const o of out) {
    const needs = needsOf.get(o.listed);
    if (needs?.length) o.spec.needs = needs;
  }
  if (problems.length) return problems;
  const cycle = findCycle(out.map((o) => o.spec));
  if (cycle) {
    const first = out.find((o) => o.spec.id === cycle[0])!;
    problems.push({ path: `$.tasks[${first.listed}].needs`, message: `needs form a cycle (each needs the next): ${cycle.join(' -> ')}` });
  }
  return problems;
}

/** A cycle among the tasks' `needs`, as the ids along it with the first repeated at the end; undefined when there is none. */
export function findCycle(tasks: readonly { id: string; needs?: string[] | undefined }[]): string[] | undefined {
  const needs = new Map(tasks.map((t) => [t.id, t.needs ?? []]));
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  // Iterative depth-first search: a 10,000-task chain must not overflow the stack.
  for (const start of tasks) {
    if (state.has(start.id)) continue;
    const stack: { id: string; next: number }[] = [{ id: start.id, next: 0 }];
    state.set(start.id, 'open');
    path.push(start.id);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const deps = needs.get(top.id) ?? [];
      if (top.next < deps.length) {
        const dep = deps[top.next++]!;
        const s = state.get(dep);
        if (s === 'open') return [...path.slice(path.indexOf(dep)), dep];
        if (s === undefined && needs.has(dep)) {
          state.set(dep, 'open');
          path.push(dep);
          stack.push({ id: dep, next: 0 });
        }
      } else {
        state.set(top.id, 'done');
        path.pop();
        stack.pop();
      }
    }
  }
  return undefined;
}
