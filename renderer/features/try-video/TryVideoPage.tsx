// Try a video: drop or pick one, get the top-5 and, for long videos, a timeline over sliding clips.
import { useRef, useState } from 'react';
import type { Prediction } from '../../../core/protocol/workbench.ts';
import { ErrorText, JobProgress, PathPicker, percent, useCheckpoints } from '../../app/components.tsx';
import { useCommand } from '../../app/use-command.ts';
import { bridge } from '../../bridge/client.ts';
import { useWorkbench } from '../../state/store.ts';

const COLORS = ['#1c7ed6', '#e8590c', '#37b24d', '#ae3ec9', '#f59f00', '#0ca678', '#d6336c', '#495057'];

type Segment = Prediction['timeline'][number];

function TopFive({ label, caption, top5 }: { label: string; caption?: string; top5: Prediction['top5'] }) {
  return (
    <table aria-label={label} className="segment-top5">
      {caption && <caption>{caption}</caption>}
      <tbody>
        {top5.map((p) => (
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
  );
}

/** The video with its timeline under it: click or drag on the timeline to seek; a segment's top-5 shows on hover or focus. */
function Player({ prediction }: { prediction: Prediction }) {
  const video = useRef<HTMLVideoElement>(null);
  const [time, setTime] = useState(0);
  const [playError, setPlayError] = useState<string | null>(null);
  const [hovered, setHovered] = useState<number | null>(null);
  const labels = [...new Set(prediction.timeline.map((t) => t.label))];
  const duration = prediction.durationSeconds ?? Math.max(0, ...prediction.timeline.map((t) => t.start + t.seconds));
  const seek = (seconds: number) => {
    const clamped = Math.min(Math.max(0, seconds), duration);
    if (video.current) video.current.currentTime = clamped;
    setTime(clamped);
  };
  const fromPointer = (event: React.PointerEvent<HTMLDivElement>) => {
    const box = event.currentTarget.getBoundingClientRect();
    return ((event.clientX - box.left) / box.width) * duration;
  };
  // The segment under the playhead, else the one hovered or focused.
  const playing = prediction.timeline.findIndex((t) => time >= t.start && time < t.start + t.seconds);
  const shown: Segment | null = prediction.timeline[hovered ?? playing] ?? null;
  return (
    <div className="player">
      {prediction.url ? (
        <video
          ref={video}
          src={prediction.url}
          controls
          muted
          preload="auto"
          aria-label={`Video ${prediction.video.split('/').pop()}`}
          onTimeUpdate={(e) => setTime(e.currentTarget.currentTime)}
          onSeeked={(e) => setTime(e.currentTarget.currentTime)}
          onError={() =>
            setPlayError(
              'The browser cannot play this file from the service (only videos under a dataset folder or the workbench home are served, in a format the browser decodes).',
            )
          }
        />
      ) : (
        <p className="muted">This service does not serve the video for playing.</p>
      )}
      <ErrorText error={playError} />
      {prediction.timeline.length > 0 && duration > 0 ? (
        <>
          <h2>Timeline over {prediction.timeline.length} sliding clips</h2>
          <div
            className="timeline-track"
            role="slider"
            tabIndex={0}
            aria-label="Position in the video: click or drag to seek"
            aria-valuemin={0}
            aria-valuemax={Math.round(duration * 100) / 100}
            aria-valuenow={Math.round(time * 100) / 100}
            aria-valuetext={`${time.toFixed(1)} s of ${duration.toFixed(1)} s`}
            onPointerDown={(e) => {
              e.currentTarget.setPointerCapture(e.pointerId);
              seek(fromPointer(e));
            }}
            onPointerMove={(e) => {
              if (e.buttons & 1) seek(fromPointer(e));
            }}
            onKeyDown={(e) => {
              const step = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
              if (!step) return;
              e.preventDefault();
              seek(time + step * Math.max(0.1, duration / 50));
            }}
            onPointerLeave={() => setHovered(null)}
          >
            {prediction.timeline.map((t, i) => (
              <div
                key={i}
                className={`timeline-segment${i === (hovered ?? playing) ? ' current' : ''}`}
                data-testid={`segment-${i}`}
                style={{
                  left: `${(t.start / duration) * 100}%`,
                  width: `${(Math.min(t.seconds, duration - t.start) / duration) * 100}%`,
                  background: COLORS[labels.indexOf(t.label) % COLORS.length],
                }}
                onPointerEnter={() => setHovered(i)}
              >
                {t.label}
              </div>
            ))}
            <div className="timeline-playhead" style={{ left: `${(time / duration) * 100}%` }} />
          </div>
          <div className="timeline-axis" aria-hidden="true">
            {Array.from({ length: 6 }, (_, k) => (
              <span key={k}>{((duration * k) / 5).toFixed(1)} s</span>
            ))}
          </div>
          {shown && (
            <TopFive
              label="Top-5 of the segment"
              caption={`Clip at ${shown.start.toFixed(1)}–${(shown.start + shown.seconds).toFixed(1)} s`}
              top5={shown.top5}
            />
          )}
        </>
      ) : (
        <p className="muted">The video is shorter than two clips: no timeline, the top-5 above is for its one clip.</p>
      )}
    </div>
  );
}

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
  // A prediction never stays under another video (issue 18, defect 12).
  const chooseVideo = (path: string) => {
    setVideo(path);
    if (prediction && prediction.video !== path) setPrediction(null);
  };
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
              chooseVideo(await bridge().upload(file));
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
                chooseVideo(await bridge().upload(file));
                setUploadError(null);
              } catch (error) {
                setUploadError((error as Error).message);
              }
            }}
          />
        </div>
        <ErrorText error={uploadError} />
        <PathPicker id="try-video" label="Video on the service's disk" kind="file" value={video} onChange={chooseVideo} />
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
              setPrediction(null);
              const result = await command.run({ checkpoint: chosen, video });
              setPrediction(result);
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
          <TopFive label="Top-5 prediction" top5={prediction.top5} />
          <Player prediction={prediction} />
        </section>
      )}
    </>
  );
}
