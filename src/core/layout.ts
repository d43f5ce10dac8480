/** Where things live in the tracking and done repositories. */
export const layout = {
  runDir: (run: string) => `projects/${run}`,
  runFile: (run: string) => `projects/${run}/run.json`,
  taskFile: (run: string, task: string) => `projects/${run}/tasks/${task}.json`,
  logFile: (run: string, task: string) => `projects/${run}/logs/${task}.log`,
  stdoutFile: (run: string, task: string) => `projects/${run}/stdout/${task}.txt`,
  resultJson: (run: string) => `projects/${run}/result.json`,
  resultText: (run: string) => `projects/${run}/result.txt`,
  /** Project files in the todo repository. */
  isProjectFile: (path: string) => /^projects\/.+\.json$/i.test(path),
};
