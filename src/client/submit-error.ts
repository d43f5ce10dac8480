/** What went wrong submitting or following a run, said for the person at the terminal. */
export class SubmitError extends Error {
  override readonly name = 'SubmitError';
}
