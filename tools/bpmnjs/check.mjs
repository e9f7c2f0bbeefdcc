#!/usr/bin/env node
// Import BPMN files into bpmn-js (the viewer bpmn.io / Camunda Modeler are built on),
// running in headless Chromium, and report every import warning.
//
//   node tools/bpmnjs/check.mjs FILE... [--png-dir DIR] [--require-browser] [--fallback]
//                               [--strict-labels]
//
// Prints one JSON object per file on stdout (one line each), a summary on stderr.
// A file fails when bpmn-js reports an import warning or error, or when a flow node,
// lane, participant, sequence flow or message flow has no DI (the modeler would not show
// it; docs/bpmn-conventions.md requires DI for all of them).
//
// Label overlaps (browser only) are listed under "overlaps" and do not fail a file
// unless --strict-labels is given: a label (of an event, gateway or flow) overlapping
// another label, a flow's label overlapping a shape that is not its flow's source or
// target (or the visible outline of its source or target: the diamond of a gateway, the
// circle of an event), and a lane's or pool's name longer than the lane is tall.
//
// Exit status: 0 all files clean; 1 some file failed; 2 usage error;
// 3 Chromium could not be used and --require-browser was given (or --png-dir needs it).
//
// When Chromium cannot be launched the files are parsed with bpmn-moddle in Node
// instead (the same parser bpmn-js uses, without the renderer's checks); every result
// then says "engine": "bpmn-moddle-fallback" and the summary says so loudly.
//
// Environment: ONETHING_CHROMIUM (default /usr/bin/chromium).

import { mkdtemp, readFile, rm, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.ONETHING_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const PAD = 30; // px of white around the diagram in pictures
const MAX_SIDE = 4000; // px; larger diagrams are scaled down to fit

function usage(message) {
  if (message) process.stderr.write(`check.mjs: ${message}\n`);
  process.stderr.write(
    'usage: node tools/bpmnjs/check.mjs FILE... [--png-dir DIR] [--require-browser] [--fallback] [--strict-labels]\n'
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { files: [], pngDir: null, requireBrowser: false, forceFallback: false, strictLabels: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--png-dir') {
      if (i + 1 >= argv.length) usage('--png-dir needs a directory');
      opts.pngDir = argv[++i];
    } else if (a.startsWith('--png-dir=')) {
      opts.pngDir = a.slice('--png-dir='.length);
    } else if (a === '--require-browser') {
      opts.requireBrowser = true;
    } else if (a === '--strict-labels') {
      opts.strictLabels = true;
    } else if (a === '--fallback') {
      opts.forceFallback = true;
    } else if (a === '-h' || a === '--help') {
      usage();
    } else if (a.startsWith('--')) {
      usage(`unknown option ${a}`);
    } else {
      opts.files.push(a);
    }
  }
  if (!opts.files.length) usage('no BPMN files given');
  if (opts.pngDir && opts.forceFallback) usage('--png-dir needs the browser; drop --fallback');
  return opts;
}

// ---------------------------------------------------------------------------
// Semantic elements that must have DI, found with bpmn-moddle in Node. The browser
// reports which element ids it drew; the difference is "missingDi".

function elementsNeedingDi(definitions) {
  const ids = [];
  const walkLanes = (laneSet) => {
    for (const lane of (laneSet && laneSet.lanes) || []) {
      ids.push(lane.id);
      walkLanes(lane.childLaneSet);
    }
  };
  const walkContainer = (container) => {
    for (const laneSet of container.laneSets || []) walkLanes(laneSet);
    for (const el of container.flowElements || []) {
      // data objects are drawn through their references; they have no DI of their own
      if (el.$type === 'bpmn:DataObject') continue;
      ids.push(el.id);
      if (el.flowElements) walkContainer(el); // sub-processes
    }
  };
  for (const root of definitions.rootElements || []) {
    if (root.$type === 'bpmn:Process') walkContainer(root);
    if (root.$type === 'bpmn:Collaboration') {
      for (const p of root.participants || []) ids.push(p.id);
      for (const m of root.messageFlows || []) ids.push(m.id);
    }
  }
  return ids.filter(Boolean);
}

const elementToString = (e) => `<${e.$type}${e.id ? ` id="${e.id}"` : ''} />`;

// What the fallback can tell without rendering: the ids that have DI, plus the DI
// warnings bpmn-js's importer would give (same wording as its BpmnTreeWalker).
function fallbackDi(definitions) {
  const ids = new Set();
  const warnings = [];
  for (const diagram of definitions.diagrams || []) {
    const plane = diagram.plane;
    if (!plane) continue;
    for (const di of [plane, ...(plane.planeElement || [])]) {
      const el = di.bpmnElement;
      if (!el || !el.id) {
        if (di !== plane) warnings.push(`no bpmnElement referenced in ${elementToString(di)}`);
      } else if (ids.has(el.id)) {
        warnings.push(`multiple DI elements defined for ${elementToString(el)}`);
      } else {
        ids.add(el.id);
      }
    }
  }
  return { ids, warnings };
}

async function moddleImport(xml) {
  const mod = await import('bpmn-moddle');
  const BpmnModdle = mod.BpmnModdle || mod.default;
  const moddle = new BpmnModdle();
  try {
    const { rootElement, warnings } = await moddle.fromXML(xml, 'bpmn:Definitions');
    return { definitions: rootElement, warnings: warnings.map((w) => w.message), error: null };
  } catch (err) {
    return {
      definitions: null,
      warnings: (err.warnings || []).map((w) => w.message),
      error: String(err.message || err),
    };
  }
}

// ---------------------------------------------------------------------------
// Browser side.

async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  const userDataDir = await mkdtemp(path.join(tmpdir(), 'onething-bpmnjs-'));
  // A persistent context is how playwright takes a --user-data-dir: a fresh one per run.
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1600, height: 900 },
    deviceScaleFactor: 1,
    offline: true,
    timeout: 60_000,
  });
  // No network at all: everything the page needs is inlined below.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('data:') || url.startsWith('about:')) return route.continue();
    return route.abort();
  });
  const page = context.pages()[0] || (await context.newPage());
  const consoleErrors = [];
  page.on('pageerror', (err) => consoleErrors.push(String(err)));
  await page.setContent(
    '<!doctype html><html><head><meta charset="utf-8"><title>bpmn-js check</title></head>' +
      '<body style="margin:0;background:#fff">' +
      '<div id="canvas" style="position:absolute;left:0;top:0;width:100vw;height:100vh;background:#fff"></div>' +
      '</body></html>'
  );
  const dist = path.join(path.dirname(require.resolve('bpmn-js/package.json')), 'dist');
  await page.addStyleTag({ path: path.join(dist, 'assets', 'diagram-js.css') });
  await page.addStyleTag({ path: path.join(dist, 'assets', 'bpmn-js.css') });
  await page.addScriptTag({ path: path.join(dist, 'bpmn-viewer.production.min.js') });
  await page.evaluate(() => {
    // eslint-disable-next-line no-undef
    window.viewer = new BpmnJS({ container: '#canvas' });
  });
  const version = context.browser() ? context.browser().version() : 'unknown';
  return {
    page,
    version,
    consoleErrors,
    async close() {
      await context.close();
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}

async function browserImport(page, xml) {
  return page.evaluate(async (xml) => {
    const viewer = window.viewer;
    const describe = (w) => String((w && w.message) || w);
    let warnings = [];
    let error = null;
    try {
      const result = await viewer.importXML(xml);
      warnings = result.warnings.map(describe);
    } catch (err) {
      error = String(err.message || err);
      warnings = (err.warnings || []).map(describe);
    }
    if (error) return { warnings, error, drawn: [], bounds: null };
    const registry = viewer.get('elementRegistry');
    const drawn = [];
    for (const el of registry.getAll()) {
      if (el.businessObject && el.businessObject.id) drawn.push(el.businessObject.id);
    }
    const canvas = viewer.get('canvas');
    const inner = canvas.viewbox().inner;
    return {
      warnings,
      error,
      drawn,
      overlaps: findOverlaps(registry),
      bounds: { x: inner.x, y: inner.y, width: inner.width, height: inner.height },
    };

    // ---- label overlaps (runs in the page) ------------------------------------------
    function findOverlaps(registry) {
      const TOLERANCE = 1; // px; labels that only touch do not count
      const overlaps = [];
      const box = (e) => ({ x: e.x, y: e.y, width: e.width, height: e.height });
      const round = (b) => ({
        x: Math.round(b.x), y: Math.round(b.y), width: Math.round(b.width), height: Math.round(b.height),
      });
      const intersection = (a, b) => {
        const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
        const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
        return w > TOLERANCE && h > TOLERANCE ? { w, h } : null;
      };
      // does the box cut into the visible outline of a shape (diamond, circle, rectangle)?
      const coversOutline = (b, shape) => {
        if (!intersection(b, shape)) return false;
        const type = shape.businessObject.$type;
        const cx = shape.x + shape.width / 2;
        const cy = shape.y + shape.height / 2;
        // the point of the (shrunk) box nearest to the shape's centre
        const nx = Math.max(b.x + TOLERANCE, Math.min(cx, b.x + b.width - TOLERANCE));
        const ny = Math.max(b.y + TOLERANCE, Math.min(cy, b.y + b.height - TOLERANCE));
        const dx = Math.abs(nx - cx) / (shape.width / 2);
        const dy = Math.abs(ny - cy) / (shape.height / 2);
        if (/Gateway$/.test(type)) return dx + dy < 1;
        if (/Event$/.test(type)) return dx * dx + dy * dy < 1;
        return true;
      };
      const describe = (e) => {
        const bo = e.businessObject;
        return { id: bo.id, type: bo.$type.replace(/^bpmn:/, ''), name: bo.name || null };
      };
      const labels = registry.filter((e) => e.type === 'label' && e.labelTarget && !e.hidden);
      const shapes = registry.filter(
        (e) => !e.waypoints && e.type !== 'label' && e.parent && e.businessObject &&
          !/^bpmn:(Lane|Participant|Process|Collaboration|Group|TextAnnotation)$/.test(e.businessObject.$type)
      );
      for (let i = 0; i < labels.length; i++) {
        for (let j = i + 1; j < labels.length; j++) {
          const a = labels[i];
          const b = labels[j];
          if (intersection(box(a), box(b))) {
            overlaps.push({
              kind: 'label-label',
              label: describe(a.labelTarget), bounds: round(box(a)),
              other: describe(b.labelTarget), otherBounds: round(box(b)),
              message: `the label of ${a.labelTarget.id} (${a.businessObject.name}) overlaps the label of ` +
                `${b.labelTarget.id} (${b.businessObject.name})`,
            });
          }
        }
      }
      for (const label of labels) {
        const flow = label.labelTarget;
        if (!flow.waypoints) continue;
        const ancestors = new Set();
        for (let p = flow.parent; p; p = p.parent) ancestors.add(p);
        for (const shape of shapes) {
          if (ancestors.has(shape)) continue; // the sub-process the flow runs in
          const own = shape === flow.source || shape === flow.target;
          if (own ? !coversOutline(box(label), shape) : !intersection(box(label), box(shape))) continue;
          overlaps.push({
            kind: 'label-shape',
            label: describe(flow), bounds: round(box(label)),
            other: describe(shape), otherBounds: round(box(shape)),
            message: `the label of ${flow.id} (${flow.businessObject.name}) overlaps ` +
              `${own ? 'its own ' + (shape === flow.source ? 'source' : 'target') + ' ' : ''}` +
              `${shape.id}${shape.businessObject.name ? ` (${shape.businessObject.name})` : ''}`,
          });
        }
      }
      // a sequence flow running through a label (other than its own)
      const flows = registry.filter((e) => e.waypoints && e.businessObject.$type === 'bpmn:SequenceFlow');
      const crosses = (b, p, q) => {
        // Liang-Barsky clipping of the segment p-q against the (shrunk) box
        const x0 = b.x + TOLERANCE, x1 = b.x + b.width - TOLERANCE;
        const y0 = b.y + TOLERANCE, y1 = b.y + b.height - TOLERANCE;
        let t0 = 0, t1 = 1;
        const dx = q.x - p.x, dy = q.y - p.y;
        for (const [pp, qq] of [[-dx, p.x - x0], [dx, x1 - p.x], [-dy, p.y - y0], [dy, y1 - p.y]]) {
          if (pp === 0) { if (qq < 0) return false; continue; }
          const r = qq / pp;
          if (pp < 0) { if (r > t1) return false; if (r > t0) t0 = r; }
          else { if (r < t0) return false; if (r < t1) t1 = r; }
        }
        return t0 <= t1;
      };
      for (const label of labels) {
        for (const flow of flows) {
          if (flow === label.labelTarget) continue;
          const w = flow.waypoints;
          if (!w.some((p, k) => k > 0 && crosses(box(label), w[k - 1], p))) continue;
          overlaps.push({
            kind: 'label-flow',
            label: describe(label.labelTarget), bounds: round(box(label)),
            other: describe(flow),
            message: `the label of ${label.labelTarget.id} (${label.businessObject.name}) is crossed by ` +
              `the sequence flow ${flow.id}`,
          });
        }
      }
      // a lane's or pool's name is written along its left edge, in a 30 px strip that
      // holds two lines; bpmn-js wraps a name longer than the lane, so a long name fills
      // the lane end to end, or needs a third line that runs out of the strip
      const MARGIN = 10; // px of the lane kept free at each end of its name
      for (const el of registry.filter((e) => /^bpmn:(Lane|Participant)$/.test(e.businessObject.$type))) {
        const text = registry.getGraphics(el).querySelector('.djs-visual > text');
        if (!text || !text.textContent) continue;
        const horizontal = (el.di || el.businessObject.di || {}).isHorizontal !== false;
        const lines = [...text.querySelectorAll('tspan')].map((t) => t.getComputedTextLength());
        const longest = Math.max(0, ...lines);
        const length = lines.reduce((a, b) => a + b, 0);
        const room = (horizontal ? el.height : el.width) - 2 * MARGIN;
        if (lines.length > 2 || longest > room) {
          overlaps.push({
            kind: 'name-outside',
            label: describe(el), bounds: round(box(el)),
            message: `the name of ${el.id} (${el.businessObject.name}) takes ${lines.length} line(s), ` +
              `the longest ${Math.ceil(longest)} px, in a ` +
              `${el.businessObject.$type === 'bpmn:Lane' ? 'lane' : 'pool'} ` +
              `${Math.round(room + 2 * MARGIN)} px ${horizontal ? 'tall' : 'wide'}: make it at least ` +
              `${Math.ceil(length / 2) + 2 * MARGIN} px (two lines) or ${Math.ceil(length) + 2 * MARGIN} px (one line)`,
          });
        }
      }
      return overlaps;
    }
  }, xml);
}

async function screenshot(page, bounds, file) {
  const width = Math.min(MAX_SIDE, Math.max(400, Math.ceil(bounds.width + 2 * PAD)));
  const height = Math.min(MAX_SIDE, Math.max(200, Math.ceil(bounds.height + 2 * PAD)));
  await page.setViewportSize({ width, height });
  await page.evaluate(
    ({ bounds, pad }) => {
      const canvas = window.viewer.get('canvas');
      canvas.resized();
      // fit the diagram plus a margin into the viewport (at most 1:1)
      const box = {
        x: bounds.x - pad,
        y: bounds.y - pad,
        width: bounds.width + 2 * pad,
        height: bounds.height + 2 * pad,
      };
      const { width, height } = canvas.getSize();
      const scale = Math.min(1, width / box.width, height / box.height);
      const w = width / scale;
      const h = height / scale;
      canvas.viewbox({ x: box.x - (w - box.width) / 2, y: box.y - (h - box.height) / 2, width: w, height: h });
    },
    { bounds, pad: PAD }
  );
  await mkdir(path.dirname(file), { recursive: true });
  await page.screenshot({ path: file, fullPage: false, omitBackground: false });
}

// ---------------------------------------------------------------------------

function pictureName(file) {
  return path.basename(file).replace(/\.bpmn(20)?(\.xml)?$/i, '') + '.png';
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const bpmnJsVersion = require('bpmn-js/package.json').version;

  let browser = null;
  let fallbackReason = null;
  if (opts.forceFallback) {
    fallbackReason = '--fallback given';
  } else {
    try {
      browser = await launchBrowser();
    } catch (err) {
      fallbackReason = `Chromium (${CHROMIUM}) could not be used: ${String(err.message || err).split('\n')[0]}`;
    }
  }
  if (!browser) {
    process.stderr.write(`check.mjs: FALLBACK to bpmn-moddle in Node; ${fallbackReason}\n`);
    if (opts.requireBrowser || opts.pngDir) {
      process.stderr.write('check.mjs: the browser is required (--require-browser / --png-dir); failing\n');
      process.exit(3);
    }
  }
  const engine = browser ? 'bpmn-js' : 'bpmn-moddle-fallback';

  let failed = 0;
  let overlapping = 0;
  try {
    for (const file of opts.files) {
      const t0 = Date.now();
      const result = {
        file,
        ok: false,
        engine,
        bpmnJs: bpmnJsVersion,
        ...(browser ? { chromium: browser.version } : { fallbackReason }),
        warnings: [],
        errors: [],
        missingDi: [],
        overlaps: [],
      };
      let xml;
      try {
        xml = await readFile(file, 'utf8');
      } catch (err) {
        result.errors.push(`cannot read: ${err.message}`);
      }
      if (xml !== undefined) {
        const parsed = await moddleImport(xml);
        let drawn;
        if (browser) {
          const r = await browserImport(browser.page, xml);
          result.warnings = r.warnings;
          if (r.error) result.errors.push(r.error);
          drawn = new Set(r.drawn);
          result.overlaps = r.overlaps || [];
          if (!r.error && opts.pngDir) {
            result.png = path.join(opts.pngDir, pictureName(file));
            await screenshot(browser.page, r.bounds, result.png);
          }
        } else {
          result.warnings = parsed.warnings;
          if (parsed.error) result.errors.push(parsed.error);
          drawn = new Set();
          if (parsed.definitions) {
            const di = fallbackDi(parsed.definitions);
            drawn = di.ids;
            result.warnings.push(...di.warnings);
          }
        }
        if (parsed.definitions && !result.errors.length) {
          result.missingDi = elementsNeedingDi(parsed.definitions).filter((id) => !drawn.has(id));
        }
      }
      if (browser && browser.consoleErrors.length) {
        result.errors.push(...browser.consoleErrors.splice(0));
      }
      result.ok = !result.warnings.length && !result.errors.length && !result.missingDi.length;
      result.ms = Date.now() - t0;
      if (!result.ok || (opts.strictLabels && result.overlaps.length)) failed++;
      if (result.overlaps.length) overlapping++;
      process.stdout.write(JSON.stringify(result) + '\n');
    }
  } finally {
    if (browser) await browser.close();
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const n = opts.files.length;
  process.stderr.write(
    `check.mjs: ${n - failed} clean, ${failed} with warnings/errors` +
      `${opts.strictLabels ? '/overlapping labels' : ''}, ${overlapping} with overlapping labels, engine ${engine}` +
      (browser ? ` (bpmn-js ${bpmnJsVersion}, Chromium ${browser.version})` : ` (FALLBACK: ${fallbackReason})`) +
      `, ${secs}s\n`
  );
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  process.stderr.write(`check.mjs: ${err.stack || err}\n`);
  process.exit(1);
});
