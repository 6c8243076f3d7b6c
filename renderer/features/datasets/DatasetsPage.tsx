// Datasets wizard: pick a folder, scan it (progress), read the class table and the problems, choose
// the split, write the annotation files; open and validate an existing file; preview a pipeline.
import { useState } from 'react';
import { Elapsed, ErrorText, JobProgress, PathPicker } from '../../app/components.tsx';
import { describeLines, groupProblems } from './problem-groups.ts';
import { FirstSteps } from '../../app/FirstSteps.tsx';
import { useCommand } from '../../app/use-command.ts';
import { bridge } from '../../bridge/client.ts';
import { useWorkbench } from '../../state/store.ts';

function ScanStep() {
  const settings = useWorkbench((s) => s.settings);
  const scan = useWorkbench((s) => s.scan);
  const setScan = useWorkbench((s) => s.setScan);
  const [root, setRoot] = useState('');
  const command = useCommand('datasets.scan');
  const folder = root || settings?.demoDataset?.root || '';
  return (
    <section className="panel" aria-labelledby="scan-heading">
      <h2 id="scan-heading">1. Scan a folder</h2>
      <p className="muted">One sub-folder per class, videos (or folders of frames) inside.</p>
      <PathPicker id="scan-root" label="Video folder" kind="folder" value={folder} onChange={setRoot} />
      <div className="row">
        <button
          type="button"
          className="primary"
          disabled={!folder || command.busy}
          onClick={async () => {
            const result = await command.run({ root: folder });
            if (result) setScan(result);
          }}
        >
          {command.busy ? 'Scanning…' : 'Scan'}
        </button>
      </div>
      <JobProgress command="datasets.scan" />
      <ErrorText error={command.error} />
      {scan && (
        <>
          <h2>
            Classes ({scan.classes.length}) and {scan.items} usable {scan.format === 'video' ? 'videos' : 'frame folders'}
          </h2>
          <table aria-label="Classes found">
            <thead>
              <tr>
                <th>Preview</th>
                <th>Index</th>
                <th>Class</th>
                <th className="num">Videos</th>
                <th className="num">Mean duration</th>
                <th className="num">Mean frames</th>
              </tr>
            </thead>
            <tbody>
              {scan.classes.map((c) => (
                <tr key={c.index}>
                  <td>
                    {c.thumbnail ? (
                      <img className="thumb" src={c.thumbnail} alt={`First frame of a ${c.name} video`} />
                    ) : (
                      <span className="muted">none</span>
                    )}
                  </td>
                  <td>{c.index}</td>
                  <td>{c.name}</td>
                  <td className="num">{c.count}</td>
                  <td className="num">{c.meanSeconds === null ? '–' : `${c.meanSeconds.toFixed(2)} s`}</td>
                  <td className="num">{c.meanFrames.toFixed(0)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Problems ({scan.problems.length})</h2>
          {scan.problems.length === 0 ? (
            <p className="ok">Every file could be read.</p>
          ) : (
            <ul aria-label="Problems">
              {scan.problems.map((p) => (
                <li key={p.path}>
                  <code>{p.path}</code>: {p.reason}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}

function SplitStep() {
  const scan = useWorkbench((s) => s.scan);
  const settings = useWorkbench((s) => s.settings);
  const written = useWorkbench((s) => s.written);
  const setWritten = useWorkbench((s) => s.setWritten);
  const setDatasets = useWorkbench((s) => s.setDatasets);
  const setPresets = useWorkbench((s) => s.setPresets);
  const [val, setVal] = useState(0.2);
  const [test, setTest] = useState(0);
  const [seed, setSeed] = useState(0);
  const [name, setName] = useState('my-dataset');
  const command = useCommand('datasets.write');
  if (!scan) return null;
  const outDir = `${settings?.home ?? ''}/datasets/${name}`;
  return (
    <section className="panel" aria-labelledby="split-heading">
      <h2 id="split-heading">2. Split and write the annotation files</h2>
      <div className="fields">
        <div>
          <label htmlFor="dataset-name">Dataset name</label>
          <input id="dataset-name" value={name} onChange={(e) => setName(e.target.value.replace(/[^\w.-]/g, '-'))} />
        </div>
        <div>
          <label htmlFor="split-val">Validation fraction</label>
          <input
            id="split-val"
            type="number"
            min={0}
            max={0.9}
            step={0.05}
            value={val}
            onChange={(e) => setVal(Number(e.target.value))}
          />
        </div>
        <div>
          <label htmlFor="split-test">Test fraction</label>
          <input
            id="split-test"
            type="number"
            min={0}
            max={0.9}
            step={0.05}
            value={test}
            onChange={(e) => setTest(Number(e.target.value))}
          />
        </div>
        <div>
          <label htmlFor="split-seed">Seed</label>
          <input id="split-seed" type="number" min={0} step={1} value={seed} onChange={(e) => setSeed(Number(e.target.value))} />
        </div>
      </div>
      <p className="muted">
        Files go to {outDir}: train.txt, val.txt{test > 0 ? ', test.txt' : ''}, classes.txt, report.json (mmaction2 video lists).
      </p>
      <button
        type="button"
        className="primary"
        disabled={command.busy || !name}
        onClick={async () => {
          const result = await command.run({ root: scan.root, outDir, val, test, seed });
          if (!result) return;
          setWritten(result);
          setDatasets(await bridge().call('datasets.list', {}));
          setPresets(await bridge().call('config.presets', {}));
        }}
      >
        Write annotation files
      </button>
      <ErrorText error={command.error} />
      {written && (
        <div role="status" aria-label="Written files">
          <p className="ok">
            Wrote {written.splits.train} train, {written.splits.val} val, {written.splits.test} test entries.
          </p>
          <ul>
            {Object.entries(written.files).map(([kind, path]) => (
              <li key={kind}>
                {kind}: <code>{path}</code>
              </li>
            ))}
          </ul>
          {written.warnings.map((w) => (
            <p key={w} className="error">
              warning: {w}
            </p>
          ))}
        </div>
      )}
    </section>
  );
}

function CheckStep() {
  const datasets = useWorkbench((s) => s.datasets);
  const check = useWorkbench((s) => s.check);
  const setCheck = useWorkbench((s) => s.setCheck);
  const preview = useWorkbench((s) => s.preview);
  const setPreview = useWorkbench((s) => s.setPreview);
  const [annFile, setAnnFile] = useState('');
  const [root, setRoot] = useState('');
  const [mode, setMode] = useState<'train' | 'val' | 'test'>('train');
  const [preset, setPreset] = useState<'small' | 'k400' | 'ssv2'>('small');
  const [index, setIndex] = useState(0);
  const [zoomed, setZoomed] = useState(false);
  const [seed, setSeed] = useState(0);
  const checking = useCommand('datasets.check');
  const previewing = useCommand('datasets.preview');
  // Results of other inputs never stay under new ones (issue 18, defect 12).
  const changeInput = (set: (value: string) => void, value: string) => {
    set(value);
    setCheck(null);
    setPreview(null);
  };
  const file = annFile || datasets[0]?.trainAnn || '';
  const dataRoot = root || datasets.find((d) => d.trainAnn === file || d.valAnn === file)?.root || datasets[0]?.root || '';
  return (
    <section className="panel" aria-labelledby="check-heading">
      <h2 id="check-heading">3. Open and validate an annotation file, preview the pipeline</h2>
      <PathPicker id="check-file" label="Annotation file" kind="file" value={file} onChange={(v) => changeInput(setAnnFile, v)} />
      <PathPicker id="check-root" label="Data root" kind="folder" value={dataRoot} onChange={(v) => changeInput(setRoot, v)} />
      <div className="row">
        <button
          type="button"
          disabled={!file || !dataRoot || checking.busy}
          onClick={async () => {
            const result = await checking.run({ annFile: file, root: dataRoot });
            setCheck(result ?? null);
          }}
        >
          Validate
        </button>
      </div>
      <ErrorText error={checking.error} />
      {check && (
        <div role="status" aria-label="Validation result">
          <p className={check.ok ? 'ok' : 'error'}>
            {check.entries} entries, {check.classes || '?'} classes: {check.ok ? 'no errors' : 'errors found'}
          </p>
          <ul aria-label="Problems found">
            {groupProblems(check.problems)
              .slice(0, 50)
              .map((group) => (
                <li key={group.message}>
                  {group.lines.length > 0 ? `${describeLines(group.lines)}: ` : ''}
                  {group.message}
                  {group.count > 1 && group.lines.length === 0 ? ` (${group.count} times)` : ''}
                </li>
              ))}
          </ul>
        </div>
      )}
      <div className="fields">
        <div>
          <label htmlFor="preview-preset">Recipe</label>
          <select id="preview-preset" value={preset} onChange={(e) => setPreset(e.target.value as typeof preset)}>
            <option value="small">small (8 frames, 32 px)</option>
            <option value="k400">Kinetics-400</option>
            <option value="ssv2">Something-Something v2</option>
          </select>
        </div>
        <div>
          <label htmlFor="preview-mode">Pipeline</label>
          <select id="preview-mode" value={mode} onChange={(e) => setMode(e.target.value as typeof mode)}>
            <option value="train">train (augmented)</option>
            <option value="val">val</option>
            <option value="test">test (multi-view)</option>
          </select>
        </div>
        <div>
          <label htmlFor="preview-index">Sample</label>
          <input id="preview-index" type="number" min={0} value={index} onChange={(e) => setIndex(Number(e.target.value))} />
        </div>
        <div>
          <label htmlFor="preview-seed">Augmentation seed</label>
          <input id="preview-seed" type="number" min={0} value={seed} onChange={(e) => setSeed(Number(e.target.value))} />
        </div>
      </div>
      <button
        type="button"
        disabled={!file || !dataRoot || previewing.busy}
        onClick={async () => {
          const result = await previewing.run({ annFile: file, root: dataRoot, preset, mode, index, seed });
          setPreview(result ?? null);
        }}
      >
        Preview frames
      </button>
      <Elapsed busy={previewing.busy} what={`Decoding and transforming sample ${index} (${mode} pipeline)`} />
      <ErrorText error={previewing.error} />
      {preview && (
        <figure className="sheet-frame">
          <img
            className={zoomed ? 'sheet zoomed' : 'sheet'}
            title={zoomed ? 'Click to fit the width' : 'Click to see it at full size (scroll to move)'}
            onClick={() => setZoomed((z) => !z)}
            src={preview.image}
            alt={`Frames the ${mode} pipeline gives for sample ${index}: ${preview.shape[0]} view(s) of ${preview.shape[2]} frames`}
          />
          <figcaption>
            <ol>
              {preview.steps.map((step) => (
                <li key={step}>{step}</li>
              ))}
            </ol>
          </figcaption>
        </figure>
      )}
    </section>
  );
}

export function DatasetsPage() {
  return (
    <>
      <h1 tabIndex={-1}>Datasets</h1>
      <FirstSteps />
      <ScanStep />
      <SplitStep />
      <CheckStep />
    </>
  );
}
