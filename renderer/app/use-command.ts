// Runs one service command from a component: busy flag, the error in words, no unhandled rejection.
import { useCallback, useState } from 'react';
import { bridge } from '../bridge/client.ts';
import type { CommandArgs, CommandName, CommandResult } from '../../core/protocol/workbench.ts';

export function useCommand<N extends CommandName>(command: N) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = useCallback(
    async (args: CommandArgs<N>): Promise<CommandResult<N> | null> => {
      setBusy(true);
      setError(null);
      try {
        return await bridge().call(command, args);
      } catch (failure) {
        setError((failure as Error).message);
        return null;
      } finally {
        setBusy(false);
      }
    },
    [command],
  );
  return { run, busy, error, setError };
}
