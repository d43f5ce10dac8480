/** Resolves once `stop` has run after the first SIGINT or SIGTERM; a second signal exits at once. */
export function onShutdown(stop: (signal: string) => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const handler = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`gitjobs: ${signal} again, exiting now\n`);
        process.exit(130);
      }
      stopping = true;
      stop(signal).then(resolve, (err) => {
        process.stderr.write(`gitjobs: error while stopping: ${String(err)}\n`);
        process.exitCode = 1;
        resolve();
      });
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}
