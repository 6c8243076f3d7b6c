// Try a video: drop or pick one, get the top-5 and, for long videos, a timeline over sliding clips.
import { useState } from 'react';
import { ErrorText, JobProgress, PathPicker, percent, useCheckpoints } from '../../app/components.tsx';
import { useCommand } from '../../app/use-command.ts';
import { bridge } from '../../bridge/client.ts';
import { useWorkbench } from '../../state/store.ts';

const COLORS = ['#1c7ed6', '#e8590c', '#37b24d', '#ae3ec9', '#f59f00', '#0ca678', '#d6336c', '#495057'];

export function TryVideoPage() {
  const checkpoints = useCheckpoints();
  const prediction = useWorkbench((s) => s.prediction);
  const setPrediction = useWorkbench((s) => s.setPrediction);
  const [checkpoint, setCheckpoint] = useState('');
  const [video, setVideo] = useState('');
  const [over, setOver] = useState(false);
  const [uploadError, setUploadError] = useState<string | null>(null);
  const command = useCommand('video.predict');
  const chosen = checkpoint || checkpoints[checkpoints.length - 1]?.path || '';
  const labels = prediction ? [...new Set(prediction.timeline.map((t) => t.label))] : [];
  return (
    <>
      <h1 tabIndex={-1}>Try a video</h1>
      <section className="panel" aria-labelledby="try-input">
        <h2 id="try-input">Video and checkpoint</h2>
        <div
          className={`drop${over ? ' over' : ''}`}
          onDragOver={(e) => {
            e.preventDefault();
            setOver(true);
          }}
          onDragLeave={() => setOver(false)}
          onDrop={async (e) => {
            e.preventDefault();
            setOver(false);
            const file = e.dataTransfer.files[0];
            if (!file) return;
            try {
              setVideo(await bridge().upload(file));
              setUploadError(null);
            } catch (error) {
              setUploadError((error as Error).message);
            }
          }}
        >
          Drop a video here, or
          <label htmlFor="try-upload" className="link">
            {' '}
            choose a file to upload
          </label>
          <input
            id="try-upload"
            type="file"
            accept="video/*"
            onChange={async (e) => {
              const file = e.target.files?.[0];
              if (!file) return;
              try {
                setVideo(await bridge().upload(file));
                setUploadError(null);
              } catch (error) {
                setUploadError((error as Error).message);
              }
            }}
          />
        </div>
        <ErrorText error={uploadError} />
        <PathPicker id="try-video" label="Video on the service's disk" kind="file" value={video} onChange={setVideo} />
        <div className="row">
          <label htmlFor="try-checkpoint">Checkpoint</label>
          <select id="try-checkpoint" value={chosen} onChange={(e) => setCheckpoint(e.target.value)}>
            {checkpoints.map((c) => (
              <option key={c.path} value={c.path}>
                {c.runName} epoch {c.epoch}
              </option>
            ))}
          </select>
          <button
            type="button"
            className="primary"
            disabled={!chosen || !video || command.busy}
            onClick={async () => {
              const result = await command.run({ checkpoint: chosen, video });
              if (result) setPrediction(result);
            }}
          >
            Predict
          </button>
        </div>
        <JobProgress command="video.predict" />
        <ErrorText error={command.error} />
      </section>
      {prediction && (
        <section className="panel" aria-labelledby="try-result">
          <h2 id="try-result">Top-5 for {prediction.video.split('/').pop()}</h2>
          <table aria-label="Top-5 prediction">
            <tbody>
              {prediction.top5.map((p) => (
                <tr key={p.label}>
                  <td>{p.label}</td>
                  <td className="num">{percent(p.score)}</td>
                  <td style={{ width: '50%' }}>
                    <div style={{ background: 'var(--accent)', height: 10, width: `${p.score * 100}%` }} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {prediction.timeline.length > 0 ? (
            <>
              <h2>Timeline over {prediction.timeline.length} sliding clips</h2>
              <div
                className="timeline"
                role="img"
                aria-label={`Predictions along the video: ${prediction.timeline.map((t) => `${t.start}s ${t.label}`).join(', ')}`}
              >
                {prediction.timeline.map((t, i) => (
                  <div
                    key={i}
                    style={{ flex: 1, background: COLORS[labels.indexOf(t.label) % COLORS.length] }}
                    title={`${t.start} s: ${t.label} ${percent(t.score)}`}
                  >
                    {t.label}
                  </div>
                ))}
              </div>
            </>
          ) : (
            <p className="muted">The video is shorter than two clips: no timeline.</p>
          )}
        </section>
      )}
    </>
  );
}
