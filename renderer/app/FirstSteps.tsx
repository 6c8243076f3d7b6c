// The first screen's hint: with no run yet and the demo dataset ready, one click trains the demo model
// and opens the Training page with its live curves.
import { useEffect } from 'react';
import { bridge } from '../bridge/client.ts';
import { useWorkbench, workbenchStore } from '../state/store.ts';
import { ErrorText } from './components.tsx';
import { useCommand } from './use-command.ts';

const DEMO_PRESET = 'demo-micro';

export function FirstSteps() {
  const runs = useWorkbench((s) => s.runs);
  const setRuns = useWorkbench((s) => s.setRuns);
  const settings = useWorkbench((s) => s.settings);
  const presets = useWorkbench((s) => s.presets);
  const start = useCommand('train.start');
  useEffect(() => {
    void bridge()
      .call('runs.list', {})
      .then(setRuns)
      .catch(() => undefined);
  }, [setRuns]);
  const demo = presets.find((p) => p.name === DEMO_PRESET);
  if (runs.length > 0 || !settings?.demoDataset || !demo) return null;
  return (
    <section className="panel first-steps" aria-labelledby="first-steps-heading">
      <h2 id="first-steps-heading">New here? Start with the demo</h2>
      <p>
        A small synthetic dataset is ready ({settings.demoDataset.classes.length} classes of moving shapes:{' '}
        {settings.demoDataset.classes.join(', ')}). One click trains the micro Video Swin on it and shows the loss and accuracy
        curves live; then compare its checkpoints on Runs, look at its attention windows, or try it on a video.
      </p>
      <button
        type="button"
        className="primary"
        disabled={start.busy}
        onClick={async () => {
          const state = workbenchStore.getState();
          state.choosePreset(DEMO_PRESET);
          state.setStarting('demo');
          state.setPage('train');
          const result = await start.run({ config: demo.config, name: 'demo' });
          if (!result) workbenchStore.setState({ status: 'failed' });
          else if (workbenchStore.getState().runId !== result.runId) workbenchStore.setState({ runId: result.runId });
        }}
      >
        Train the demo model
      </button>
      <ErrorText error={start.error} />
      <p className="muted">Or bring your own videos: the steps below make annotation files from a folder of class subfolders.</p>
    </section>
  );
}
