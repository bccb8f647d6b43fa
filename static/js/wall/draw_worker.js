// The wall's drawing, off the page's main thread (see painter.js): the page hands over
// its canvas once, with its translated strings (tiles show states and stages in words),
// then asks for one board at a time; each answer is the tiles drawn.
import { useStrings } from "../i18n.js";
import { drawPage, warmUp } from "./draw.js";

let canvas = null;

self.onmessage = async ({ data }) => {
  if (data.canvas) {
    canvas = data.canvas;
    useStrings(data.strings);
    warmUp();
    return;
  }
  try {
    const tiles = await drawPage(canvas, data.board, data.by, data.empty, { ratio: data.ratio });
    self.postMessage({ id: data.id, tiles });
  } catch (error) {
    self.postMessage({ id: data.id, error: String(error && error.message || error) });
  }
};
