// The few Plotly calls the workbench makes, typed loosely: plotly.js-strict-dist-min ships no types.
declare module 'plotly.js-strict-dist-min' {
  export type Datum = number | string | null;
  export interface Trace {
    [key: string]: unknown;
  }
  export interface Layout {
    [key: string]: unknown;
  }
  export interface PlotElement extends HTMLElement {
    data?: Trace[];
    on?(
      event: 'plotly_click',
      handler: (payload: { points: { x: number; y: number; pointNumber: number | number[]; curveNumber: number }[] }) => void,
    ): void;
    on?(event: 'plotly_relayout', handler: (payload: Record<string, unknown>) => void): void;
  }
  const Plotly: {
    react(element: HTMLElement, data: Trace[], layout?: Layout, config?: Record<string, unknown>): Promise<PlotElement>;
    newPlot(element: HTMLElement, data: Trace[], layout?: Layout, config?: Record<string, unknown>): Promise<PlotElement>;
    extendTraces(
      element: HTMLElement,
      update: { x: Datum[][]; y: Datum[][] },
      indices: number[],
      maxPoints?: number,
    ): Promise<PlotElement>;
    relayout(element: HTMLElement, update: Layout): Promise<PlotElement>;
    purge(element: HTMLElement): void;
  };
  export default Plotly;
}
