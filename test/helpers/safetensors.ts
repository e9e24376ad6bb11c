// A small safetensors writer for tests, independent of the addon's: it writes hand-chosen keys,
// dtypes and (for the malformed cases) deliberately wrong headers.
import fs from 'fs';

export interface RawTensor {
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
  offsets?: [number, number]; // override the computed data_offsets
}

export function writeSafetensors(
  file: string,
  tensors: Record<string, RawTensor>,
  options: { headerLength?: number } = {},
): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const bodies: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = {
      dtype: t.dtype,
      shape: t.shape,
      data_offsets: t.offsets ?? [offset, offset + t.bytes.length],
    };
    offset += t.bytes.length;
    bodies.push(t.bytes);
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(options.headerLength ?? json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, ...bodies]));
}

export function readSafetensorsHeader(file: string): Record<string, any> {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  return JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
}

export function readSafetensorsTensor(
  file: string,
  name: string,
): { dtype: string; shape: number[]; bytes: Buffer } {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const e = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'))[name];
  return {
    dtype: e.dtype,
    shape: e.shape,
    bytes: buf.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]),
  };
}

export function f32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(
    values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength),
  );
}

// IEEE half and bfloat16 encodings, round to nearest even.
export function toF16Bits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function fromF16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

export function toBF16Bits(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  const rounded = u + 0x7fff + ((u >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function fromBF16Bits(b: number): number {
  return new Float32Array(new Uint32Array([b << 16]).buffer)[0];
}

export function u16Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Uint16Array.from(values).buffer);
}
