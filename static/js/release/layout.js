// Where the flowchart's nodes go. The chart is a row of blocks read left to right: the
// local stages, then one box per batch holding its hosts in a grid. A row that is full
// wraps to the next one, so the chart fits the width it is given and grows downwards.
// Every edge joins two neighbouring blocks and is routed in the empty space between them
// (a right-angled "taxi" line), so it never runs through a host. Computed once per
// release: state changes only recolour nodes.

export const GEOMETRY = {
  PAD: 8,            // inside a batch box, around its caption and grid
  GAP_X: 8,          // between hosts of a grid
  GAP_Y: 6,
  CAPTION_H: 18,     // the batch's caption, above its grid
  CAPTION_GAP: 4,
  CAPTION_MIN_W: 170,
  BLOCK_GAP: 44,     // between blocks of one row: room for the arrow
  ROW_GAP: 40,       // between rows: room for the arrow that wraps
};

/** The grid a batch of `count` items gets in `width`: as many columns as fit. */
export function gridOf(count, itemW, width) {
  const { PAD, GAP_X } = GEOMETRY;
  const fit = Math.floor((width - 2 * PAD + GAP_X) / (itemW + GAP_X));
  const cols = Math.max(1, Math.min(count, fit));
  return { cols, rows: Math.max(1, Math.ceil(count / cols)) };
}

function measure(block, width) {
  const g = GEOMETRY;
  if (block.kind === "stage") return { ...block, bw: block.w, bh: block.h };
  const { cols, rows } = gridOf(block.items.length, block.itemW, width);
  const gridW = cols * (block.itemW + g.GAP_X) - g.GAP_X;
  const innerW = Math.max(gridW, Math.min(g.CAPTION_MIN_W, width - 2 * g.PAD));
  const gridH = rows * (block.itemH + g.GAP_Y) - g.GAP_Y;
  return { ...block, cols, rows, innerW, bw: innerW + 2 * g.PAD,
    bh: 2 * g.PAD + g.CAPTION_H + g.CAPTION_GAP + gridH };
}

/**
 * blocks: [{id, kind: "stage", w, h}] or [{id, kind: "batch", items: [ids], itemW, itemH}],
 * in reading order; width: the model width available.
 * Returns {positions: Map(id → {x, y}) (node centres; a batch's caption is `caption:<id>`),
 * captions: Map(batch id → caption width), edges: [{source, target, wrap}], width, height}.
 */
export function layoutChart(blocks, width) {
  const g = GEOMETRY;
  const rows = [];
  let x = 0;
  for (const block of blocks.map((b) => measure(b, width))) {
    const row = rows[rows.length - 1];
    if (!row || x + g.BLOCK_GAP + block.bw > width) {
      rows.push([block]);
      x = block.bw;
    } else {
      row.push(block);
      x += g.BLOCK_GAP + block.bw;
    }
  }
  const positions = new Map();
  const captions = new Map();
  const edges = [];
  let top = 0;
  let widest = 0;
  let previous = null;
  rows.forEach((row, r) => {
    const height = Math.max(...row.map((b) => b.bh));
    let left = 0;
    for (const block of row) {
      // Blocks of a row share their bottom line: an arrow that wraps leaves every block
      // of the row from the same height and turns in the gap below it.
      const blockTop = top + height - block.bh;
      if (block.kind === "stage") {
        positions.set(block.id, { x: left + block.bw / 2, y: blockTop + block.bh / 2 });
      } else {
        captions.set(block.id, block.innerW);
        positions.set(`caption:${block.id}`, { x: left + g.PAD + block.innerW / 2,
          y: blockTop + g.PAD + g.CAPTION_H / 2 });
        const gridTop = blockTop + g.PAD + g.CAPTION_H + g.CAPTION_GAP;
        block.items.forEach((id, i) => {
          const col = i % block.cols;
          const line = Math.floor(i / block.cols);
          positions.set(id, {
            x: left + g.PAD + col * (block.itemW + g.GAP_X) + block.itemW / 2,
            y: gridTop + line * (block.itemH + g.GAP_Y) + block.itemH / 2,
          });
        });
      }
      if (previous) edges.push({ source: previous.id, target: block.id, wrap: previous.row !== r });
      previous = { id: block.id, row: r };
      left += block.bw + g.BLOCK_GAP;
    }
    widest = Math.max(widest, left - g.BLOCK_GAP);
    top += height + g.ROW_GAP;
  });
  return { positions, captions, edges, width: widest, height: Math.max(0, top - g.ROW_GAP) };
}
