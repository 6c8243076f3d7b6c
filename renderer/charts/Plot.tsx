// A static Plotly figure (bars, heatmaps, overlays): Plotly.react on data change, never a re-mount.
import Plotly, { type Layout, type PlotElement, type Trace } from 'plotly.js-strict-dist-min';
import { useEffect, useRef } from 'react';
import { useWorkbench } from '../state/store.ts';

export interface PlotProps {
  data: Trace[];
  layout?: Layout;
  label: string;
  height?: number;
  onClickPoint?: (point: { x: number; y: number; curve: number }) => void;
  testId?: string;
}

export function Plot({ data, layout, label, height = 320, onClickPoint, testId }: PlotProps) {
  const element = useRef<HTMLDivElement>(null);
  const click = useRef(onClickPoint);
  click.current = onClickPoint;
  const theme = useWorkbench((s) => s.theme);
  useEffect(() => {
    const target = element.current;
    if (!target) return;
    const style = getComputedStyle(document.documentElement);
    const text = style.getPropertyValue('--text').trim() || '#222';
    const grid = style.getPropertyValue('--grid').trim() || '#ddd';
    const axis = (extra: unknown) => ({ color: text, gridcolor: grid, ...(extra as object) });
    void Plotly.react(
      target,
      data,
      {
        paper_bgcolor: 'rgba(0,0,0,0)',
        plot_bgcolor: 'rgba(0,0,0,0)',
        font: { color: text },
        margin: { l: 60, r: 15, t: 35, b: 45 },
        height,
        uirevision: label,
        ...layout,
        // Titles sit on the left: Plotly's toolbar (top right) then never covers them.
        title: { x: 0.01, xanchor: 'left', ...(layout?.title as object | undefined) },
        xaxis: axis(layout?.xaxis),
        yaxis: axis(layout?.yaxis),
      },
      { displaylogo: false, responsive: true },
    ).then((plot: PlotElement) => {
      if (plot.dataset.bound) return;
      plot.dataset.bound = '1';
      plot.on?.('plotly_click', (payload) => {
        const point = payload.points[0];
        if (point) click.current?.({ x: point.x, y: point.y, curve: point.curveNumber });
      });
    });
  }, [data, layout, height, label, theme]);
  useEffect(() => {
    const target = element.current;
    return () => {
      if (target) Plotly.purge(target);
    };
  }, []);
  return <div ref={element} role="img" aria-label={label} data-testid={testId} className="plot" />;
}
