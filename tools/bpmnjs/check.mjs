#!/usr/bin/env node
// Import BPMN files into bpmn-js (the viewer bpmn.io / Camunda Modeler are built on),
// running in headless Chromium, and report every import warning.
//
//   node tools/bpmnjs/check.mjs FILE... [--png-dir DIR] [--require-browser] [--fallback]
//
// Prints one JSON object per file on stdout (one line each), a summary on stderr.
// A file fails when bpmn-js reports an import warning or error, or when a flow node,
// lane, participant, sequence flow or message flow has no DI (the modeler would not show
// it; docs/bpmn-conventions.md requires DI for all of them).
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
    'usage: node tools/bpmnjs/check.mjs FILE... [--png-dir DIR] [--require-browser] [--fallback]\n'
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { files: [], pngDir: null, requireBrowser: false, forceFallback: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--png-dir') {
      if (i + 1 >= argv.length) usage('--png-dir needs a directory');
      opts.pngDir = argv[++i];
    } else if (a.startsWith('--png-dir=')) {
      opts.pngDir = a.slice('--png-dir='.length);
    } else if (a === '--require-browser') {
      opts.requireBrowser = true;
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
      bounds: { x: inner.x, y: inner.y, width: inner.width, height: inner.height },
    };
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
      if (!result.ok) failed++;
      process.stdout.write(JSON.stringify(result) + '\n');
    }
  } finally {
    if (browser) await browser.close();
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const n = opts.files.length;
  process.stderr.write(
    `check.mjs: ${n - failed} clean, ${failed} with warnings/errors, engine ${engine}` +
      (browser ? ` (bpmn-js ${bpmnJsVersion}, Chromium ${browser.version})` : ` (FALLBACK: ${fallbackReason})`) +
      `, ${secs}s\n`
  );
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  process.stderr.write(`check.mjs: ${err.stack || err}\n`);
  process.exit(1);
});
