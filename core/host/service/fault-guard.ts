// The service process must outlive any one client's or job's fault. tfjs-backend-wasm (Emscripten)
// installs process hooks that rethrow every uncaught exception and unhandled rejection, which turns a
// stray error in one socket, decoder or job into the death of the service and every training in it.
// This guard removes those two hooks (only those: they are recognised by their exact source) and
// reports such errors instead; it restores everything when the service closes.

type Listener = (...args: unknown[]) => void;

/** The bodies Emscripten's Node glue registers; any other listener is left alone. */
const rethrowHooks: Record<'uncaughtException' | 'unhandledRejection', RegExp> = {
  uncaughtException: /^function\s*\(ex\)\s*\{\s*if\s*\(!\(ex instanceof ExitStatus\)\)\s*\{\s*throw ex;\s*\}\s*\}$/,
  unhandledRejection: /^function\s*\(reason\)\s*\{\s*throw reason;\s*\}$/,
};

export interface FaultGuard {
  /** Errors reported since the guard was installed (newest last, at most 100). */
  readonly reported: string[];
  release(): void;
}

function describeFault(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/**
 * Installs the guard: `report` hears every uncaught exception and unhandled rejection (with where
 * it came from) and the process keeps serving. Hooks a later backend start adds are removed too.
 */
export function guardServiceProcess(report: (message: string) => void): FaultGuard {
  const removed: { event: 'uncaughtException' | 'unhandledRejection'; listener: Listener }[] = [];
  const reported: string[] = [];
  const strip = () => {
    for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
      for (const listener of process.listeners(event as 'uncaughtException') as Listener[]) {
        if (rethrowHooks[event].test(String(listener).trim())) {
          process.removeListener(event as 'uncaughtException', listener);
          removed.push({ event, listener });
        }
      }
    }
  };
  const note = (origin: string, error: unknown) => {
    const message = `${origin} in the service (the service keeps running): ${describeFault(error)}`;
    reported.push(message);
    if (reported.length > 100) reported.shift();
    try {
      report(message);
    } catch {
      // A failing reporter must not turn a handled fault into a fatal one.
    }
  };
  const onException = (error: unknown) => note('uncaught exception', error);
  const onRejection = (reason: unknown) => note('unhandled rejection', reason);
  // A hook added after this point (the wasm module started later) is stripped on the next turn.
  const onNewListener = (event: string | symbol) => {
    if (event === 'uncaughtException' || event === 'unhandledRejection') queueMicrotask(strip);
  };
  strip();
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  process.on('newListener', onNewListener);
  return {
    reported,
    release: () => {
      process.off('newListener', onNewListener);
      process.off('uncaughtException', onException);
      process.off('unhandledRejection', onRejection);
      for (const { event, listener } of removed.splice(0)) process.on(event as 'uncaughtException', listener);
    },
  };
}
