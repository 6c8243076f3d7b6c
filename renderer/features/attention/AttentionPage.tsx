// Attention windows: a checkpoint and a video; the sampled frames as a strip; the 3-D window grid of
// a stage over them (regular or shifted; the frame border colour is the temporal window); click a
// patch to see that token's attention over its window, per head or averaged; the clip's top-5.
// The service keeps the block's attention; the page fetches the clicked query's window only, and
// keeps the last one fetched so clicks inside the same window need no call.
import { useEffect, useMemo, useRef, useState } from 'react';
import { ErrorText, percent, useCheckpoints } from '../../app/components.tsx';
import { useCommand } from '../../app/use-command.ts';
import { bridge } from '../../bridge/client.ts';
import { useWorkbench } from '../../state/store.ts';
import type { AttentionView, AttentionWindow, Triple } from '../../../core/protocol/workbench.ts';
import { attentionRow, boundaries, placeOf, tokenAt } from './window-math.ts';

const SCALE = 4;
const WINDOW_COLORS = ['#e8590c', '#1c7ed6', '#37b24d', '#ae3ec9', '#f59f00', '#0ca678'];

function FrameCanvas({
  view,
  frame,
  query,
  heat,
}: {
  view: AttentionView;
  frame: number;
  query: Triple | null;
  heat: Map<string, number> | null;
  onPick?: never;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const width = view.clip[2] * SCALE;
  const height = view.clip[1] * SCALE;
  const tokenPixels = [view.patch[1] * 2 ** view.stage * SCALE, view.patch[2] * 2 ** view.stage * SCALE];
  const d = Math.floor(frame / view.patch[0]);
  useEffect(() => {
    const context = canvas.current?.getContext('2d');
    if (!context) return;
    context.clearRect(0, 0, width, height);
    if (heat) {
      const max = Math.max(...heat.values(), 1e-9);
      for (const [key, value] of heat) {
        const [td, th, tw] = key.split(',').map(Number);
        if (td !== d) continue;
        context.fillStyle = `rgba(255, 40, 0, ${Math.min(0.85, (value / max) * 0.85)})`;
        context.fillRect(tw * tokenPixels[1], th * tokenPixels[0], tokenPixels[1], tokenPixels[0]);
      }
    }
    // A dark casing under a white line keeps the window borders visible on any texture.
    const line = (x0: number, y0: number, x1: number, y1: number) => {
      for (const [style, width] of [
        ['rgba(0,0,0,0.85)', 4],
        ['#ffffff', 2],
      ] as const) {
        context.strokeStyle = style;
        context.lineWidth = width;
        context.beginPath();
        context.moveTo(x0, y0);
        context.lineTo(x1, y1);
        context.stroke();
      }
    };
    for (const h of boundaries(view, 1)) line(0, h * tokenPixels[0], width, h * tokenPixels[0]);
    for (const w of boundaries(view, 2)) line(w * tokenPixels[1], 0, w * tokenPixels[1], height);
    if (query && query[0] === d) {
      context.strokeStyle = '#ffe066';
      context.lineWidth = 3;
      context.strokeRect(query[2] * tokenPixels[1] + 1, query[1] * tokenPixels[0] + 1, tokenPixels[1] - 2, tokenPixels[0] - 2);
    }
  }, [view, d, heat, query, width, height, tokenPixels]);
  return <canvas ref={canvas} width={width} height={height} />;
}

export function AttentionPage() {
  const checkpoints = useCheckpoints();
  const datasets = useWorkbench((s) => s.datasets);
  const view = useWorkbench((s) => s.attention);
  const setView = useWorkbench((s) => s.setAttention);
  const [checkpoint, setCheckpoint] = useState('');
  const [videos, setVideos] = useState<{ path: string; label: number }[]>([]);
  const [video, setVideo] = useState('');
  const [stage, setStage] = useState(0);
  const [block, setBlock] = useState(1);
  const [head, setHead] = useState(-1);
  const [query, setQuery] = useState<Triple | null>(null);
  const command = useCommand('attention.view');
  const dataset = datasets[0];
  // The last window fetched (for the view it belongs to), the window being fetched and its error.
  const [fetched, setFetched] = useState<{ view: AttentionView; data: AttentionWindow } | null>(null);
  const [loading, setLoading] = useState<number | null>(null);
  const [windowError, setWindowError] = useState<string | null>(null);
  const latestRequest = useRef(0);

  useEffect(() => {
    if (!dataset) return;
    void bridge()
      .call('datasets.videos', { annFile: dataset.valAnn ?? dataset.trainAnn, root: dataset.root })
      .then(setVideos)
      .catch(() => undefined);
  }, [dataset]);

  const chosenCheckpoint = checkpoint || checkpoints[checkpoints.length - 1]?.path || '';
  const chosenVideo = video || videos[0]?.path || '';

  const place = useMemo(() => (view && query ? placeOf(view, query) : null), [view, query]);
  const wanted = place?.window ?? null;
  const held = fetched && fetched.view === view && fetched.data.window === wanted ? fetched.data : null;

  useEffect(() => {
    if (!view || wanted === null || held) return;
    // Only the answer to the latest request is shown (the user may click on before it arrives).
    const request = ++latestRequest.current;
    setLoading(wanted);
    setWindowError(null);
    bridge()
      .call('attention.window', {
        checkpoint: view.checkpoint,
        video: view.video,
        stage: view.stage,
        block: view.block,
        window: wanted,
      })
      .then((data) => {
        if (request !== latestRequest.current) return;
        setFetched({ view, data });
        setLoading(null);
      })
      .catch((failure: unknown) => {
        if (request !== latestRequest.current) return;
        setWindowError(failure instanceof Error ? failure.message : String(failure));
        setLoading(null);
      });
  }, [view, wanted, held]);

  const heat = useMemo(() => {
    if (!view || !place || !held) return null;
    const row = attentionRow(held, place, head);
    const map = new Map<string, number>();
    row.forEach((value, slot) => {
      const token = tokenAt(view, place.window, slot);
      if (token) map.set(token.join(','), value);
    });
    return map;
  }, [view, place, held, head]);

  const pick = (frame: number, event: React.MouseEvent<HTMLDivElement>) => {
    if (!view) return;
    const box = event.currentTarget.getBoundingClientRect();
    const x = (event.clientX - box.left) / SCALE;
    const y = (event.clientY - box.top) / SCALE;
    const size = 2 ** view.stage;
    const token: Triple = [
      Math.floor(frame / view.patch[0]),
      Math.min(view.grid[1] - 1, Math.floor(y / (view.patch[1] * size))),
      Math.min(view.grid[2] - 1, Math.floor(x / (view.patch[2] * size))),
    ];
    setQuery(token);
  };

  const temporalWindow = (frame: number) =>
    view ? boundaries(view, 0).filter((b) => b <= Math.floor(frame / view.patch[0])).length : 0;

  return (
    <>
      <h1 tabIndex={-1}>Attention windows</h1>
      <section className="panel" aria-labelledby="attention-input">
        <h2 id="attention-input">Checkpoint, video and block</h2>
        <div className="fields">
          <div>
            <label htmlFor="attention-checkpoint">Checkpoint</label>
            <select id="attention-checkpoint" value={chosenCheckpoint} onChange={(e) => setCheckpoint(e.target.value)}>
              {checkpoints.map((c) => (
                <option key={c.path} value={c.path}>
                  {c.runName} epoch {c.epoch}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label htmlFor="attention-video">Video</label>
            <select id="attention-video" value={chosenVideo} onChange={(e) => setVideo(e.target.value)}>
              {videos.map((v) => (
                <option key={v.path} value={v.path}>
                  {v.path.split('/').slice(-2).join('/')}
                </option>
              ))}
              {video && !videos.some((v) => v.path === video) && <option value={video}>{video}</option>}
            </select>
          </div>
          <div>
            <label htmlFor="attention-file">Or any video file (absolute path)</label>
            <input
              id="attention-file"
              value={video}
              onChange={(e) => setVideo(e.target.value)}
              placeholder="/path/to/video.mp4"
            />
          </div>
          <div>
            <label htmlFor="attention-stage">Stage</label>
            <select id="attention-stage" value={stage} onChange={(e) => setStage(Number(e.target.value))}>
              {[0, 1, 2, 3].map((s) => (
                <option key={s} value={s}>
                  stage {s + 1}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label htmlFor="attention-block">Block</label>
            <select id="attention-block" value={block} onChange={(e) => setBlock(Number(e.target.value))}>
              {Array.from({ length: 18 }, (_, b) => (
                <option key={b} value={b}>
                  block {b + 1} ({b % 2 === 0 ? 'regular' : 'shifted'} windows)
                </option>
              ))}
            </select>
          </div>
        </div>
        <button
          type="button"
          className="primary"
          disabled={!chosenCheckpoint || !chosenVideo || command.busy}
          onClick={async () => {
            const result = await command.run({ checkpoint: chosenCheckpoint, video: chosenVideo, stage, block });
            if (result) {
              setView(result);
              setQuery(null);
              setWindowError(null);
            }
          }}
        >
          {command.busy ? 'Running the model…' : 'Show windows'}
        </button>
        {checkpoints.length === 0 && <p className="muted">No checkpoints yet: train a run first.</p>}
        <ErrorText error={command.error} />
      </section>
      {view && (
        <section className="panel" aria-labelledby="attention-frames">
          <h2 id="attention-frames">
            Stage {view.stage + 1}, block {view.block + 1}: {view.shifted ? 'shifted' : 'regular'} windows of{' '}
            {view.window.join('x')} tokens (shift {view.shifted ? view.shift.join(',') : '0,0,0'}), grid {view.grid.join('x')}
          </h2>
          <p className="muted">
            White lines: window borders; frame border colour: the temporal window (a window spans {view.window[0] * view.patch[0]}{' '}
            frames). Click a patch to see where it attends.
          </p>
          <div className="row">
            <label htmlFor="attention-head">Head</label>
            <select id="attention-head" value={head} onChange={(e) => setHead(Number(e.target.value))}>
              <option value={-1}>
                average of {view.heads} head{view.heads === 1 ? '' : 's'}
              </option>
              {Array.from({ length: view.heads }, (_, h) => (
                <option key={h} value={h}>
                  head {h + 1}
                </option>
              ))}
            </select>
            {query && <span data-testid="query-token">query token (t, y, x) = ({query.join(', ')})</span>}
          </div>
          <div className="frames" role="group" aria-label="Sampled frames with the window grid">
            {view.frames.map((src, t) => (
              <div
                key={t}
                className="frame"
                style={{ borderBottom: `4px solid ${WINDOW_COLORS[temporalWindow(t) % WINDOW_COLORS.length]}` }}
              >
                <div
                  style={{ position: 'relative', width: view.clip[2] * SCALE, height: view.clip[1] * SCALE }}
                  onClick={(event) => pick(t, event)}
                  role="button"
                  tabIndex={0}
                  aria-label={`Frame ${t + 1}: click a patch, or press Enter and the arrow keys`}
                  onKeyDown={(event) => {
                    // Enter picks the centre patch of this frame; arrow keys then move the query patch.
                    const d = Math.floor(t / view.patch[0]);
                    const current: Triple =
                      query && query[0] === d ? query : [d, Math.floor(view.grid[1] / 2), Math.floor(view.grid[2] / 2)];
                    const moves: Record<string, [number, number]> = {
                      ArrowUp: [-1, 0],
                      ArrowDown: [1, 0],
                      ArrowLeft: [0, -1],
                      ArrowRight: [0, 1],
                    };
                    if (event.key === 'Enter' || event.key === ' ') {
                      event.preventDefault();
                      setQuery(current);
                    } else if (moves[event.key]) {
                      event.preventDefault();
                      const [dy, dx] = moves[event.key];
                      setQuery([
                        d,
                        Math.min(view.grid[1] - 1, Math.max(0, current[1] + dy)),
                        Math.min(view.grid[2] - 1, Math.max(0, current[2] + dx)),
                      ]);
                    }
                  }}
                >
                  <img src={src} width={view.clip[2] * SCALE} height={view.clip[1] * SCALE} alt={`Sampled frame ${t + 1}`} />
                  <FrameCanvas view={view} frame={t} query={query} heat={heat} />
                </div>
                <div className="caption">frame {t + 1}</div>
              </div>
            ))}
          </div>
          {query && loading !== null && !held && (
            <p className="muted" role="status" data-testid="window-loading">
              Loading the attention of window {loading + 1} of {view.windowsPerClip}…
            </p>
          )}
          <ErrorText error={windowError} />
          {heat && held && (
            <p data-testid="heatmap-summary">
              Attention of token ({query?.join(', ')}) over {heat.size} tokens of its window (window {held.window + 1} of{' '}
              {view.windowsPerClip}); strongest {(Math.max(...heat.values()) * 100).toFixed(1)}%.
            </p>
          )}
          <h2>Top-5 prediction of the clip</h2>
          <table aria-label="Top-5 prediction">
            <tbody>
              {view.top5.map((p) => (
                <tr key={p.label}>
                  <td>{p.label}</td>
                  <td className="num">{percent(p.score)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </>
  );
}
