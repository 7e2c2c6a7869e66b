/**
 * Just enough of a PNG decoder (8-bit RGB/RGBA, non-interlaced — what Chromium writes) to check that a screenshot
 * shows something: dimensions, pixel colours. node:zlib does the inflating.
 */
import { inflateSync } from 'node:zlib';

export interface DecodedPng {
  width: number;
  height: number;
  /** RGBA, 4 bytes a pixel. */
  rgba: Uint8Array;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function decodePng(buf: Buffer): DecodedPng {
  if (buf.length < 33 || !buf.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG (bad signature)');
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  let sawEnd = false;
  for (let off = 8; off + 8 <= buf.length;) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (data.length !== len) throw new Error(`truncated ${type} chunk`);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const bitDepth = data[8];
      const colorType = data[9];
      const interlace = data[12];
      if (bitDepth !== 8 || interlace !== 0 || (colorType !== 2 && colorType !== 6)) {
        throw new Error(`unsupported PNG: bit depth ${bitDepth}, colour type ${colorType}, interlace ${interlace}`);
      }
      channels = colorType === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') {
      sawEnd = true;
      break;
    }
    off += 12 + len;
  }
  if (!width || !height || !sawEnd || idat.length === 0) throw new Error('PNG lacks IHDR, IDAT or IEND');
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length !== height * (stride + 1)) throw new Error(`PNG data is ${raw.length} bytes, expected ${height * (stride + 1)}`);
  const out = new Uint8Array(width * height * 4);
  let prev = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const cur = new Uint8Array(stride);
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? (cur[x - channels] ?? 0) : 0;
      const b = prev[x] ?? 0;
      const c = x >= channels ? (prev[x - channels] ?? 0) : 0;
      const v = line[x] ?? 0;
      let pred: number;
      switch (filter) {
        case 0:
          pred = 0;
          break;
        case 1:
          pred = a;
          break;
        case 2:
          pred = b;
          break;
        case 3:
          pred = (a + b) >> 1;
          break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          throw new Error(`bad PNG filter ${filter} on line ${y}`);
      }
      cur[x] = (v + pred) & 0xff;
    }
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      out[o] = cur[x * channels] ?? 0;
      out[o + 1] = cur[x * channels + 1] ?? 0;
      out[o + 2] = cur[x * channels + 2] ?? 0;
      out[o + 3] = channels === 4 ? (cur[x * channels + 3] ?? 0) : 255;
    }
    prev = cur;
  }
  return { width, height, rgba: out };
}

export function pixel(png: DecodedPng, x: number, y: number): [number, number, number] {
  const o = (y * png.width + x) * 4;
  return [png.rgba[o] ?? 0, png.rgba[o + 1] ?? 0, png.rgba[o + 2] ?? 0];
}

/** How varied the image is: distinct colours, and the share of pixels that differ from the most common colour. */
export function pixelStats(png: DecodedPng): { distinctColours: number; nonBackgroundShare: number } {
  const counts = new Map<number, number>();
  for (let i = 0; i < png.rgba.length; i += 4) {
    const key = ((png.rgba[i] ?? 0) << 16) | ((png.rgba[i + 1] ?? 0) << 8) | (png.rgba[i + 2] ?? 0);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  let top = 0;
  for (const n of counts.values()) if (n > top) top = n;
  const total = png.width * png.height;
  return { distinctColours: counts.size, nonBackgroundShare: (total - top) / total };
}
