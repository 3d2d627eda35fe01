// How many jobs run at once in this process (config `concurrency`), shared by every run
// of the process (the daemon's tiers included). Jobs are let in first come, first
// served; a job that stops containers (`stop: true`) never runs beside another one that
// does, so two jobs cannot stop and restart the same container under each other.
export type Release = () => void;

interface Waiter {
  stop: boolean;
  grant: (r: Release) => void;
}

export class JobSlots {
  private running = 0;
  private stopping = false;
  private readonly queue: Waiter[] = [];
  readonly limit: number;

  constructor(limit: number) {
    this.limit = Math.max(1, limit);
  }

  /** Resolves when the job may run; call the returned function when it is done. */
  acquire(stop: boolean): Promise<Release> {
    return new Promise((grant) => {
      this.queue.push({ stop, grant });
      this.pump();
    });
  }

  private pump(): void {
    for (let head = this.queue[0]; head; head = this.queue[0]) {
      if (this.running >= this.limit || (head.stop && this.stopping)) return;
      this.queue.shift();
      this.running++;
      if (head.stop) this.stopping = true;
      let released = false;
      const stop = head.stop;
      head.grant(() => {
        if (released) return;
        released = true;
        this.running--;
        if (stop) this.stopping = false;
        this.pump();
      });
    }
  }
}

let shared: JobSlots | undefined;

/** The process's job slots (the first caller's limit wins: one config per process). */
export function jobSlots(limit: number): JobSlots {
  shared ??= new JobSlots(limit);
  return shared;
}
