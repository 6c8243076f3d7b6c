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
import { attentionRow, boundaries, heatColor, placeOf, realWindows, tokenAt, windowQuery } from './window-math.ts';

/** Frames of the strip are shown this wide whatever the clip's size (smaller when there are many of them). */
const FRAME_PIXELS = 320;
const MANY_FRAME_PIXELS = 200;
/** The frame of the query token, enlarged next to the colour bar. */
const FOCUS_PIXELS = 560;
const WINDOW_COLORS = ['#e8590c', '#1c7ed6', '#37b24d', '#ae3ec9', '#f59f00', '#0ca678'];
/** Colour scale of the heatmap: from 0 to the strongest weight in the window, or the whole probability range. */
type HeatScale = 'strongest' | 'absolute';

function FrameCanvas({
  view,
  frame,
  query,
  heat,
  top,
  scale,
}: {
  view: AttentionView;
  frame: number;
  query: Triple | null;
  heat: Map<string, number> | null;
  /** The weight drawn brightest. */
  top: number;
  scale: number;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const width = Math.round(view.clip[2] * scale);
  const height = Math.round(view.clip[1] * scale);
  const tokenPixels = [view.patch[1] * 2 ** view.stage * scale, view.patch[2] * 2 ** view.stage * scale];
  const d = Math.floor(frame / view.patch[0]);
  useEffect(() => {
    const context = canvas.current?.getContext('2d');
    if (!context) return;
    context.clearRect(0, 0, width, height);
    let cells = 0;
    if (heat) {
      for (const [key, value] of heat) {
        const [td, th, tw] = key.split(',').map(Number);
        if (td !== d) continue;
        const t = value / Math.max(top, 1e-9);
        const [r, g, b] = heatColor(t);
        // Weak weights stay see-through so the frame shows under them; strong ones cover it.
        context.fillStyle = `rgba(${r}, ${g}, ${b}, ${(0.35 + 0.5 * Math.min(1, t)).toFixed(3)})`;
        context.fillRect(tw * tokenPixels[1], th * tokenPixels[0], tokenPixels[1], tokenPixels[0]);
        cells += 1;
      }
    }
    if (canvas.current) canvas.current.dataset.heatCells = String(cells);
    // A dark casing under a white line keeps the window borders visible on any texture.
    const line = (x0: number, y0: number, x1: number, y1: number) => {
      for (const [style, lineWidth] of [
        ['rgba(0,0,0,0.85)', 4],
        ['#ffffff', 2],
      ] as const) {
        context.strokeStyle = style;
        context.lineWidth = lineWidth;
        context.beginPath();
        context.moveTo(x0, y0);
        context.lineTo(x1, y1);
        context.stroke();
      }
    };
    for (const h of boundaries(view, 1)) line(0, h * tokenPixels[0], width, h * tokenPixels[0]);
    for (const w of boundaries(view, 2)) line(w * tokenPixels[1], 0, w * tokenPixels[1], height);
    if (query && query[0] === d) {
      context.strokeStyle = '#00e5ff';
      context.lineWidth = 3;
      context.strokeRect(
        query[2] * tokenPixels[1] + 1.5,
        query[1] * tokenPixels[0] + 1.5,
        tokenPixels[1] - 3,
        tokenPixels[0] - 3,
      );
    }
  }, [view, d, heat, top, query, width, height, tokenPixels]);
  return <canvas ref={canvas} width={width} height={height} />;
}

/** The colour bar: what the heatmap's colours mean, in attention weight (%). */
function ColorBar({ top, uniform }: { top: number; uniform: number }) {
  const stops = Array.from({ length: 11 }, (_, i) => {
    const [r, g, b] = heatColor(i / 10);
    return `rgb(${r}, ${g}, ${b}) ${i * 10}%`;
  });
  const at = (value: number) => `${Math.min(100, (value / Math.max(top, 1e-9)) * 100)}%`;
  return (
    <figure className="color-bar" aria-label={`Colour scale: attention weight from 0% to ${(top * 100).toFixed(1)}%`}>
      <div className="color-bar-strip" style={{ background: `linear-gradient(to right, ${stops.join(', ')})` }}>
        {uniform <= top && <span className="color-bar-mark" style={{ left: at(uniform) }} title="uniform attention" />}
      </div>
      <figcaption className="color-bar-labels">
        <span>0%</span>
        <span>uniform over the window: {(uniform * 100).toFixed(1)}%</span>
        <span>{(top * 100).toFixed(1)}%</span>
      </figcaption>
    </figure>
  );
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
  const [heatScale, setHeatScale] = useState<HeatScale>('strongest');
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
  // Blocks per stage: from the run's config for listed checkpoints, from the last view for a file.
  const depths =
    checkpoints.find((c) => c.path === chosenCheckpoint)?.depths ??
    (view && view.checkpoint === chosenCheckpoint ? view.depths : null);
  const stageCount = depths?.length ?? 4;
  const stageShown = Math.min(stage, stageCount - 1);
  const blockCount = depths?.[stageShown] ?? 2;
  const blockShown = Math.min(block, blockCount - 1);
  const scale = view ? (view.frames.length > 8 ? MANY_FRAME_PIXELS : FRAME_PIXELS) / view.clip[2] : 1;

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

  const windows = useMemo(() => (view ? realWindows(view, view.windowsPerClip) : []), [view]);
  /** Moves the query to the centre of the next (or previous) window that holds real tokens. */
  const stepWindow = (direction: 1 | -1) => {
    if (!view || windows.length === 0) return;
    const current = place ? windows.indexOf(place.window) : -1;
    const next = current < 0 ? (direction > 0 ? 0 : windows.length - 1) : (current + direction + windows.length) % windows.length;
    setQuery(windowQuery(view, windows[next]));
  };
  const stepHead = (direction: 1 | -1) => {
    if (!view) return;
    // -1 is the average; the heads follow it: average, head 1, ..., head H, average, ...
    setHead((h) => ((h + 1 + direction + view.heads + 1) % (view.heads + 1)) - 1);
  };

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

  const strongest = heat ? Math.max(...heat.values()) : 0;
  const top = heatScale === 'absolute' ? 1 : Math.max(strongest, 1e-9);

  const pick = (frame: number, event: React.MouseEvent<HTMLDivElement>) => {
    if (!view) return;
    // In clip pixels, whatever size the frame is drawn at (the strip's or the enlarged one).
    const box = event.currentTarget.getBoundingClientRect();
    const x = ((event.clientX - box.left) / box.width) * view.clip[2];
    const y = ((event.clientY - box.top) / box.height) * view.clip[1];
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
              {checkpoint && !checkpoints.some((c) => c.path === checkpoint) && (
                <option value={checkpoint}>{checkpoint.split('/').pop()}</option>
              )}
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
            <label htmlFor="attention-checkpoint-file">Or any checkpoint file (absolute path)</label>
            <input
              id="attention-checkpoint-file"
              value={checkpoint}
              onChange={(e) => setCheckpoint(e.target.value)}
              placeholder="/path/to/checkpoint.safetensors"
            />
          </div>
          <div>
            <label htmlFor="attention-stage">Stage</label>
            <select id="attention-stage" value={stageShown} onChange={(e) => setStage(Number(e.target.value))}>
              {Array.from({ length: stageCount }, (_, s) => (
                <option key={s} value={s}>
                  stage {s + 1}
                  {depths ? ` (${depths[s]} blocks)` : ''}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label htmlFor="attention-block">Block</label>
            <select id="attention-block" value={blockShown} onChange={(e) => setBlock(Number(e.target.value))}>
              {Array.from({ length: blockCount }, (_, b) => (
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
            const result = await command.run({
              checkpoint: chosenCheckpoint,
              video: chosenVideo,
              stage: stageShown,
              block: blockShown,
            });
            if (result) {
              setView(result);
              setQuery(null);
              setWindowError(null);
            }
          }}
        >
          {command.busy ? 'Running the model…' : 'Show windows'}
        </button>
        {checkpoints.length === 0 && !checkpoint && <p className="muted">No checkpoints yet: train a run first.</p>}
        {!depths && chosenCheckpoint && (
          <p className="muted">
            This file&apos;s blocks per stage are not known yet: the lists show the first blocks; they follow the model after Show
            windows.
          </p>
        )}
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
          <div className="row" role="group" aria-label="Step through windows and heads">
            <button type="button" onClick={() => stepWindow(-1)} disabled={windows.length === 0}>
              ◀ Previous window
            </button>
            <button type="button" onClick={() => stepWindow(1)} disabled={windows.length === 0}>
              Next window ▶
            </button>
            <span data-testid="window-position">
              {place ? `window ${place.window + 1} of ${view.windowsPerClip}` : `${view.windowsPerClip} windows: pick a patch`}
            </span>
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
            <button type="button" onClick={() => stepHead(-1)} aria-label="Previous head">
              ◀
            </button>
            <button type="button" onClick={() => stepHead(1)} aria-label="Next head">
              ▶
            </button>
            <label htmlFor="attention-scale">Colours</label>
            <select id="attention-scale" value={heatScale} onChange={(e) => setHeatScale(e.target.value as HeatScale)}>
              <option value="strongest">0 to the strongest weight</option>
              <option value="absolute">0 to 100%</option>
            </select>
            {query && <span data-testid="query-token">query token (t, y, x) = ({query.join(', ')})</span>}
          </div>
          {heat && held && <ColorBar top={top} uniform={1 / heat.size} />}
          {query && (
            <figure
              className="focus-frame"
              aria-label={`Frame ${query[0] * view.patch[0] + 1} enlarged, with the query's window`}
            >
              <div
                style={{
                  position: 'relative',
                  width: FOCUS_PIXELS,
                  height: Math.round((view.clip[1] * FOCUS_PIXELS) / view.clip[2]),
                }}
                onClick={(event) => pick(query[0] * view.patch[0], event)}
              >
                <img
                  src={view.frames[query[0] * view.patch[0]]}
                  width={FOCUS_PIXELS}
                  height={Math.round((view.clip[1] * FOCUS_PIXELS) / view.clip[2])}
                  alt={`Sampled frame ${query[0] * view.patch[0] + 1}, enlarged`}
                />
                <FrameCanvas
                  view={view}
                  frame={query[0] * view.patch[0]}
                  query={query}
                  heat={heat}
                  top={top}
                  scale={FOCUS_PIXELS / view.clip[2]}
                />
              </div>
              <figcaption className="muted">
                Frame {query[0] * view.patch[0] + 1} (of the query token), enlarged; the strip below shows every sampled frame.
              </figcaption>
            </figure>
          )}
          <div className="frames frames-large" role="group" aria-label="Sampled frames with the window grid">
            {view.frames.map((src, t) => (
              <div
                key={t}
                className="frame"
                style={{ borderBottom: `4px solid ${WINDOW_COLORS[temporalWindow(t) % WINDOW_COLORS.length]}` }}
              >
                <div
                  style={{
                    position: 'relative',
                    width: Math.round(view.clip[2] * scale),
                    height: Math.round(view.clip[1] * scale),
                  }}
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
                  <img
                    src={src}
                    width={Math.round(view.clip[2] * scale)}
                    height={Math.round(view.clip[1] * scale)}
                    alt={`Sampled frame ${t + 1}`}
                  />
                  <FrameCanvas view={view} frame={t} query={query} heat={heat} top={top} scale={scale} />
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
              {view.windowsPerClip}), {head < 0 ? `average of ${view.heads} heads` : `head ${head + 1} of ${view.heads}`};
              strongest {(strongest * 100).toFixed(1)}%, uniform would be {((1 / heat.size) * 100).toFixed(1)}%.
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
