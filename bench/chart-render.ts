import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/**
 * Renders a vega-lite spec to an SVG document headless: vega-lite compiles it to a vega spec, a vega
 * View without a renderer (`renderer: 'none'`, no DOM, no canvas) runs the dataflow, and
 * `View.toSVG()` writes the scene. Text is measured by vega's estimate (no canvas package), so
 * label widths are approximate; the SVG itself is exact.
 */
export async function renderChartSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
