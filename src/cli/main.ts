#!/usr/bin/env node
/** The `gitjobs` command line. */
import { parseArgs } from 'node:util';
import { ServiceUnavailableError } from '../core/errors.js';
import { COMMON_FLAGS, FORGE_FLAGS, UsageError } from './options.js';
import { SubmitError } from '../client/submit-error.js';

export const HELP = `gitjobs — a Git-native job runner

Push a project (a JSON list of tasks) to the todo repository; each task runs in
its own container, every state transition is a commit in the tracking
repository, and the result is committed to the done repository.

Usage:
  gitjobs up [--home DIR] [--host 127.0.0.1] [--port 8080] [--workers 2]
             [--executor docker|process] [--public-url URL] [--grace 30s]
             [--forge github|gitea --owner OWNER [--forge-url URL]] [--poll 30s]
      Built-in Git host, HTTP server, dispatcher and collector, and N workers in
      a small process of their own. Prints the clone URLs. On SIGINT or SIGTERM it stops taking tasks,
      lets running ones finish for --grace (default 30s), requeues the rest.
      With --forge github|gitea --owner OWNER the repositories live on the forge:
      gitjobs mirrors them, takes webhooks at /webhooks/github and /webhooks/gitea,
      pushes its commits back, sets commit statuses; --poll 30s also watches the
      todo and config branches for hosts that webhooks cannot reach.
  gitjobs init --forge github|gitea --owner OWNER --public-url URL [--forge-url URL]
      Create (or reuse) the four repositories on the forge, push repos-template/
      to the empty ones, and register push webhooks with a generated secret
      (saved to HOME/webhook-secret, mode 600).
  gitjobs worker [--workers 2] [--executor docker|process] [--cache DIR] [--grace 30s]
                 [--read-ahead 0]
      Workers only, for other machines against the same RabbitMQ. Takes only as
      many tasks as it has slots (see --read-ahead). Removes task
      containers left by crashed workers of this host when it starts. Sends
      GITJOBS_API_TOKEN, when set, to fetch config from an up that asks for it.
  gitjobs submit FILE [--wait] [--as NAME] [--no-cache] [--url URL] [--timeout 30m]
      Commit FILE to projects/ in the todo repository and push it. With --wait,
      show progress until the result lands (a bar on a terminal, lines
      otherwise), print it, and exit 1 if the run failed (2 if it was rejected);
      the first 10 failed tasks are shown with their output's last lines, the
      others counted.
      --no-cache: tasks with "cache": true run even when the result cache
      holds their result (the commit says "Gitjobs-Cache: off"; a git push of
      a commit with that line does the same).
  gitjobs status [RUN] [--all] [--state STATE[,STATE]] [--url URL]
      Runs and task states, through the server's API (which reads them from
      the tracking repository). RUN: its tasks counted by state, and listed;
      past 50 tasks, only those that did not succeed (at most 50) unless
      --all (every task) or --state (those in these states: waiting, queued,
      running, succeeded, failed, skipped, cancelled).
  gitjobs watch RUN [--url URL]
      Progress until the result lands (a bar on a terminal, lines otherwise).
  gitjobs logs RUN TASK [--follow] [--url URL]
      A task's output: all of it once finished; so far (and with --follow,
      until it ends) while it runs.
  gitjobs cancel RUN [--reason TEXT] [--url URL]
      Cancel a run: unfinished tasks end cancelled, running containers are
      killed, the result records it. Deleting the project file does the same.
      Sends GITJOBS_API_TOKEN as bearer token when it is set.
  gitjobs rerun RUN [--failed] [--pinned] [--no-cache] [--wait] [--timeout 30m] [--url URL]
      Run a finished (or rejected) run again as a new run RUN.rN: the same
      project file at the same todo commit, with the config repository as it
      is now. --failed runs only the tasks that did not succeed; the others
      are recorded "queued -> succeeded (reused from RUN/TASK at COMMIT)" with
      their output, so the result is whole. --pinned uses the config commit
      RUN ran with instead of today's (its images built again if gone); with
      --wait it says when the base image has changed since. --no-cache: no
      task takes its result from the result cache. --wait follows it as
      submit --wait does. Needs the same token.
  gitjobs diff RUN1 RUN2 [--all] [--url URL]
      Two runs task by task: state, exit code, output (blob id), image and
      duration; only the tasks that differ unless --all. Exits 1 when
      something differs, 0 when nothing does (as diff does).
  gitjobs verify RUN [--tracking PATH] [--done PATH] [--url URL]
      Check a run from plain clones of tracking and done (cloned from the
      server's Git host unless given as local paths): every task's commits
      form an allowed path to its recorded state, each output and file is the
      blob result.json names, the result is what those outputs reduce to, and
      the commits named exist. Exits 0, or 1 listing each difference.
  gitjobs bisect RUN TASK --good CONFIG_COMMIT --bad CONFIG_COMMIT [--timeout 30m] [--url URL]
      Which config commit broke TASK: runs it again (a re-run of RUN with that
      one task, recorded like any run) at config commits between the two,
      halving the range each time, and prints the first commit at which it
      fails, with its subject. Needs the token, as rerun does.
  gitjobs demo [--n 10] [--executor docker|process] [--keep]
      Start everything in a temporary home, push the N-Queens project through a
      real push, print the result and the tracking log, and shut down.

Common options:
  --amqp-url URL        RabbitMQ (env GITJOBS_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672)
  --queue-prefix P      P.TODO, P.DONE, P.DONE_LARGE, P.DEAD and the P.CONTROL and P.OUTPUT exchanges
                        instead of TODO, DONE, DONE_LARGE, DEAD, CONTROL and OUTPUT (env GITJOBS_QUEUE_PREFIX)
  --todo-repo NAME      default tache_a_faire (env GITJOBS_TODO_REPO)
  --tracking-repo NAME  default tache_suivi (env GITJOBS_TRACKING_REPO)
  --done-repo NAME      default tache_termine (env GITJOBS_DONE_REPO)
  --config-repo NAME    default config (env GITJOBS_CONFIG_REPO)
  --branch NAME         default main (env GITJOBS_BRANCH)
  --base-image IMAGE    image worker Dockerfiles build FROM (env GITJOBS_BASE_IMAGE,
                        default gitjobs-base:latest, made by docker/base/build.sh)
  --log-level LEVEL     fatal, error, warn, info, debug, trace or silent (default info)
  --consumer-timeout D  RabbitMQ's consumer_timeout (env GITJOBS_CONSUMER_TIMEOUT, default 30m). Tasks
                        whose timeout exceeds half of it are acked at start and held by heartbeats
                        (every GITJOBS_HEARTBEAT, default 10s; three missed and the attempt is lost).
                        Every running attempt sends them; after a restart, gitjobs queues a running
                        attempt again only if no worker has reported it for three heartbeats.
  --result-cap SIZE     stdout a run's tasks may give its result, all together (env GITJOBS_RESULT_CAP,
                        default 64MiB); past it the run ends failed, naming the cap
  --max-message SIZE    the largest message RabbitMQ takes (env GITJOBS_MAX_MESSAGE, default 128MiB, as
                        RabbitMQ 3's max_message_size; 4.x has 16MiB). Task files travel in messages:
                        past it a task's files or inputs fail it, saying so
  --push-files N        project files one push may add or change (env GITJOBS_PUSH_FILES, default
                        100); past it one rejected record names the rule and none of them run
  --read-ahead N        TODO messages a worker (up's or gitjobs worker) holds beyond its slots (env
                        GITJOBS_READ_AHEAD, default 0). Held ones start the moment a slot frees (a
                        few per cent faster for tasks of milliseconds) but wait behind that
                        worker's running tasks while another worker may be idle
  --home DIR            where the built-in host keeps repositories (env GITJOBS_HOME, default ./.gitjobs)
  --port N              HTTP port (env GITJOBS_PORT, default 8080)
  --url URL             the server, for submit and status (env GITJOBS_URL, default http://127.0.0.1:$GITJOBS_PORT)

Forge options (up, init):
  --forge KIND          builtin (default), github or gitea (env GITJOBS_FORGE)
  --owner NAME          user or organisation owning the repositories (env GITJOBS_OWNER)
  --forge-url URL       Gitea server, or GitHub API root (default https://api.github.com) (env GITJOBS_FORGE_URL)
  --git-url URL         base of clone URLs when it differs from the forge's (env GITJOBS_GIT_URL)
  --public-url URL      where the forge and remote workers reach this server (env GITJOBS_PUBLIC_URL)
  --poll DURATION       also poll the forge, e.g. 30s (env GITJOBS_POLL)
Tokens come from the environment only: GITHUB_TOKEN, GITEA_TOKEN, and
GITJOBS_API_TOKEN. With it set, pushing to the built-in host (the token as password),
cancel, rerun and the queue services need it; without it, only loopback clients may push
or change anything. With --forge the built-in host mirrors the forge's repositories, and
every request to it follows that rule (workers send the token to fetch config). The webhook
secret comes from GITJOBS_WEBHOOK_SECRET or HOME/webhook-secret (written by init).

Project files (projects/*.json in the todo repository; README "Projects"):
  {"tasks": [{"id": "a", "run": "echo hi"}, ...]}, {"nqueens": {"n": 12, "tasks": 8}} (tasks:
  default 2 up to n = 16, 8 above), or the prototype's array.
  Per project or task: timeout, retry {max, on_exit, on_timeout, backoff} (or retries N), cache,
  out (true or a size up to 64m: files the task writes under /out, $GITJOBS_OUT, are
  committed to done under <run>/files/<task>/). Per task: matrix (with include, exclude),
  needs (waits for those tasks; finds their stdout and files read-only under
  /in/<task>/, $GITJOBS_IN). Per project: worker, limits, reduce | result (a task whose
  stdout is the result), fail_fast, parallel N, schedule (cron, UTC).
`;

type Run = (values: Record<string, string | boolean | undefined>, positionals: string[]) => Promise<number>;

/** A command's code is loaded when it runs: `status` need not load the server, nor `up` the client. */
function lazy(load: () => Promise<Record<string, unknown>>, name: string): Run {
  return async (values, positionals) => ((await load())[name] as Run)(values, positionals);
}

const COMMANDS: Record<string, { flags: Record<string, { type: 'string' | 'boolean'; short?: string }>; run: (values: Record<string, string | boolean | undefined>, positionals: string[]) => Promise<number> }> = {
  up: { flags: { ...FORGE_FLAGS, home: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, workers: { type: 'string' }, executor: { type: 'string' }, 'public-url': { type: 'string' }, poll: { type: 'string' }, grace: { type: 'string' } }, run: lazy(() => import('./commands/up.js'), 'upCommand') },
  watch: { flags: { url: { type: 'string' }, port: { type: 'string' }, timeout: { type: 'string' } }, run: lazy(() => import('./commands/watch.js'), 'watchCommand') },
  logs: { flags: { url: { type: 'string' }, port: { type: 'string' }, follow: { type: 'boolean', short: 'f' } }, run: lazy(() => import('./commands/logs.js'), 'logsCommand') },
  cancel: { flags: { url: { type: 'string' }, port: { type: 'string' }, reason: { type: 'string' } }, run: lazy(() => import('./commands/cancel.js'), 'cancelCommand') },
  rerun: { flags: { url: { type: 'string' }, port: { type: 'string' }, wait: { type: 'boolean' }, timeout: { type: 'string' }, failed: { type: 'boolean' }, pinned: { type: 'boolean' }, 'no-cache': { type: 'boolean' } }, run: lazy(() => import('./commands/rerun.js'), 'rerunCommand') },
  bisect: { flags: { url: { type: 'string' }, port: { type: 'string' }, good: { type: 'string' }, bad: { type: 'string' }, timeout: { type: 'string' } }, run: lazy(() => import('./commands/bisect.js'), 'bisectCommand') },
  verify: { flags: { url: { type: 'string' }, port: { type: 'string' }, tracking: { type: 'string' }, done: { type: 'string' } }, run: lazy(() => import('./commands/verify.js'), 'verifyCommand') },
  diff: { flags: { url: { type: 'string' }, port: { type: 'string' }, all: { type: 'boolean' } }, run: lazy(() => import('./commands/diff.js'), 'diffCommand') },
  init: { flags: { ...FORGE_FLAGS, home: { type: 'string' }, 'public-url': { type: 'string' } }, run: lazy(() => import('./commands/init.js'), 'initCommand') },
  worker: { flags: { workers: { type: 'string' }, executor: { type: 'string' }, cache: { type: 'string' }, grace: { type: 'string' } }, run: lazy(() => import('./commands/worker.js'), 'workerCommand') },
  submit: { flags: { wait: { type: 'boolean' }, as: { type: 'string' }, 'no-cache': { type: 'boolean' }, url: { type: 'string' }, port: { type: 'string' }, timeout: { type: 'string' } }, run: lazy(() => import('./commands/submit.js'), 'submitCommand') },
  status: { flags: { url: { type: 'string' }, port: { type: 'string' }, all: { type: 'boolean' }, state: { type: 'string' } }, run: lazy(() => import('./commands/status.js'), 'statusCommand') },
  demo: { flags: { n: { type: 'string' }, executor: { type: 'string' }, keep: { type: 'boolean' }, workers: { type: 'string' } }, run: lazy(() => import('./commands/demo.js'), 'demoCommand') },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(HELP);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`gitjobs: unknown command ${JSON.stringify(name)}\n\n${HELP}`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({ args: rest, options: { ...COMMON_FLAGS, ...command.flags }, allowPositionals: true, strict: true });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    return await command.run(values, positionals);
  } catch (err) {
    if (err instanceof ServiceUnavailableError) {
      process.stderr.write(`gitjobs: ${err.message}\n`);
      return 3;
    }
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`gitjobs ${name}: ${(err as Error).message}\nSee \`gitjobs --help\`.\n`);
      return 2;
    }
    // The server's answer (or that there is none) is the message: no stack trace.
    if (err instanceof SubmitError || (err as Error).name === 'ApiError') {
      process.stderr.write(`gitjobs ${name}: ${(err as Error).message}\n`);
      return 1;
    }
    process.stderr.write(`gitjobs ${name}: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
