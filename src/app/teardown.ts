/** What was started, stopped in the reverse order; an error in one step is logged and the rest still run. */
export class Teardown {
  private readonly steps: (() => Promise<unknown>)[] = [];

  constructor(private readonly log: { error(obj: object, msg: string): void }) {}

  add(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) await step().catch((err) => this.log.error({ err: String(err) }, 'error while stopping'));
  }
}
